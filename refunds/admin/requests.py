"""Admin screens: the support queue of refund requests, their buttons and the evidence report.

The state is read-only here. Each button posts to a small view that checks the permission,
makes ONE service call and turns a `RefundError` into an admin message.
"""

import hashlib
import json
import mimetypes
import uuid
from datetime import timedelta
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponseNotAllowed, HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from config.actors import Actor
from config.admin_kit import DefaultQueueFilter, LargeTableAdmin, ReadOnlyAdminMixin, person
from config.money import money
from orders.masking import FULL, can_see_customers, email_for, phone_for, pii_level, reference_for
from orders.models import Channel, Order
from refunds import permissions as perms
from refunds import selectors, selectors_exports, selectors_search, services
from refunds.admin.exports import export_response
from refunds.errors import RefundError, RefundValidationError
from refunds.models import Export, Inspection, Reason, RefundMethod, RefundRequest
from refunds.resources import EXPORTERS, RefundRequestResource
from risk.models import RiskLevel

State = RefundRequest.State


# --- filters -----------------------------------------------------------------------------


class QueueFilter(DefaultQueueFilter):
    """The support queue by default; any single state, or everything, on request."""

    title = _("state")
    parameter_name = "queue"
    default_label = _("Support queue (under review, awaiting customer)")
    QUEUE, ALL = "", "all"

    def lookups(self, request, model_admin):
        return [(self.ALL, _("All")), *State.choices]

    def queue_queryset(self, request, queryset):
        value = self.value()
        if value in (None, self.QUEUE):
            return queryset.filter(state__in=selectors.SUPPORT_QUEUE_STATES)
        if value == self.ALL:
            return queryset
        if value in State.values:
            return queryset.filter(state=value)
        return queryset.none()


class AgeFilter(admin.SimpleListFilter):
    title = _("age")
    parameter_name = "age"
    BUCKETS = {
        "lt1": (_("under a day"), None, 1),
        "1to3": (_("1–3 days"), 1, 3),
        "3to7": (_("3–7 days"), 3, 7),
        "gt7": (_("over a week"), 7, None),
    }

    def lookups(self, request, model_admin):
        return [(k, v[0]) for k, v in self.BUCKETS.items()]

    def queryset(self, request, queryset):
        bucket = self.BUCKETS.get(self.value() or "")
        if bucket is None:
            return queryset
        now = timezone.now()
        _label, low, high = bucket
        if low is not None:
            queryset = queryset.filter(created_at__lte=now - timedelta(days=low))
        if high is not None:
            queryset = queryset.filter(created_at__gt=now - timedelta(days=high))
        return queryset


def age_text(since) -> str:
    if since is None:
        return ""
    delta = timezone.now() - since
    if delta.days >= 1:
        return _("%(n)dd %(h)dh") % {"n": delta.days, "h": delta.seconds // 3600}
    return _("%(h)dh %(m)dm") % {"h": delta.seconds // 3600, "m": (delta.seconds % 3600) // 60}


# --- forms for the buttons -------------------------------------------------------------


class ApproveForm(forms.Form):
    note = forms.CharField(label=_("Note (internal)"), required=False, widget=forms.Textarea(attrs={"rows": 2}))


class RejectForm(forms.Form):
    reason = forms.CharField(label=_("Reason for the customer"), widget=forms.Textarea(attrs={"rows": 2}))


class AskForm(forms.Form):
    question = forms.CharField(label=_("Question for the customer"), widget=forms.Textarea(attrs={"rows": 2}))


class OfferForm(forms.Form):
    KINDS = [
        ("expedite", _("Expedite the parcel")),
        ("replacement", _("Send a replacement")),
        ("partial_refund", _("Partial refund, keep the item")),
        ("other", _("Other")),
    ]
    kind = forms.ChoiceField(label=_("Alternative"), choices=KINDS)
    description = forms.CharField(label=_("What the customer is offered"), widget=forms.Textarea(attrs={"rows": 2}))


class VerdictForm(forms.Form):
    verdict = forms.ChoiceField(label=_("Verdict"), choices=RefundRequest.Verdict.choices)


# action → (label, permission, form, states it applies to, service call)
ACTIONS = {
    "approve": (
        _("Approve"),
        perms.REVIEW,
        ApproveForm,
        [State.UNDER_REVIEW],
        lambda refund_id, actor, d: services.refund_approve(refund_id=refund_id, actor=actor, note=d["note"]),
    ),
    "reject": (
        _("Reject"),
        perms.REVIEW,
        RejectForm,
        [State.UNDER_REVIEW],
        lambda refund_id, actor, d: services.refund_reject(refund_id=refund_id, actor=actor, reason=d["reason"]),
    ),
    "ask": (
        _("Ask the customer"),
        perms.REVIEW,
        AskForm,
        [State.UNDER_REVIEW],
        lambda refund_id, actor, d: services.refund_ask_customer(refund_id=refund_id, actor=actor, question=d["question"]),
    ),
    "offer": (
        _("Offer an alternative"),
        perms.REVIEW,
        OfferForm,
        [State.UNDER_REVIEW],
        lambda refund_id, actor, d: services.refund_offer_alternative(
            refund_id=refund_id, actor=actor, alternative={"kind": d["kind"], "description": d["description"]}
        ),
    ),
    "verdict": (
        _("Record a verdict"),
        perms.RECORD_VERDICT,
        VerdictForm,
        [s for s in State.values if s not in (State.SUBMITTED, State.UNDER_REVIEW, State.AWAITING_CUSTOMER)],
        lambda refund_id, actor, d: services.refund_record_verdict(refund_id=refund_id, actor=actor, verdict=d["verdict"]),
    ),
}

SUCCESS = {
    "approve": _("%(number)s: approval recorded."),
    "reject": _("%(number)s was rejected; the customer is told why."),
    "ask": _("%(number)s: the question was sent to the customer."),
    "offer": _("%(number)s: the alternative was offered to the customer."),
    "verdict": _("%(number)s: verdict recorded."),
}


def error_text(exc: RefundError) -> str:
    if isinstance(exc, RefundValidationError):
        return "; ".join(" ".join(v) for v in exc.errors.values())
    return exc.message


# --- the admin -----------------------------------------------------------------------------


@admin.register(RefundRequest)
class RefundRequestAdmin(ReadOnlyAdminMixin, LargeTableAdmin, admin.ModelAdmin):
    list_display = ["number_link", "age", "reason", "why_escalated", "risk", "amount", "channel_name", "state"]
    list_display_links = None
    list_filter = [QueueFilter, "channel", "reason", AgeFilter]
    search_fields = ["order__number"]
    search_help_text = _("A request number (RF-000123), an order number (with or without its zeros) or a customer.")
    ordering = ["created_at", "id"]
    list_per_page = 50
    change_form_template = "admin/refunds/refundrequest/change_form.html"
    change_list_template = "admin/refunds/refundrequest/change_list.html"
    fieldsets = [
        (None, {"fields": ["state", "kind", "reason", "refund_method", "customer_note"]}),
        (_("Money"), {"fields": ["money_requested", "money_approved", "money_paid"]}),
        (
            _("Decision"),
            {
                "fields": [
                    "escalation_reason",
                    "decided_by",
                    "decision_reason",
                    "alternative",
                    "requires_second_review",
                    "first_approved_by_name",
                    "risk_score",
                    "risk_level",
                    "verdict",
                    "verdict_by_name",
                ]
            },
        ),
        (_("Dates"), {"fields": ["created_at", "state_changed_at", "evaluated_at", "approved_at", "rejected_at"]}),
    ]

    def get_queryset(self, request):
        return selectors.support_queue()

    def get_search_results(self, request, queryset, search_term):
        # Indexed look-ups only (refunds.selectors_search); the queue filter lets a search
        # reach every state (config.admin_kit.DefaultQueueFilter).
        term = search_term.strip()
        if not term:
            return queryset, False
        ids = [pk for pk, _rank in selectors_search.request_ids_matching(term, user=request.user, limit=500)]
        return queryset.filter(pk__in=ids), False

    @admin.display(description=_("number"), ordering="pk")
    def number_link(self, obj):
        url = reverse("admin:refunds_refundrequest_change", args=[obj.pk])
        return format_html('<a href="{}" class="rd-nowrap">{}</a>', url, obj.number)

    @admin.display(description=_("age"), ordering="created_at")
    def age(self, obj):
        return age_text(obj.created_at)

    @admin.display(description=_("why escalated"))
    def why_escalated(self, obj):
        text = obj.escalation_reason or ""
        return text if len(text) <= 90 else text[:89] + "…"

    @admin.display(description=_("risk"), ordering="risk_score")
    def risk(self, obj):
        if obj.risk_score is None:
            return "—"
        # The stored code, shown through its label so the column follows the staff language.
        level = str(RiskLevel(obj.risk_level).label).lower() if obj.risk_level in RiskLevel.values else obj.risk_level
        return f"{level or '?'} ({obj.risk_score})"

    @admin.display(description=_("channel"), ordering="channel__name")
    def channel_name(self, obj):
        return obj.channel.name

    @admin.display(description=_("amount"), ordering="amount_requested")
    def amount(self, obj):
        return money(obj.amount_requested, obj.currency)

    @admin.display(description=_("amount requested"))
    def money_requested(self, obj):
        return money(obj.amount_requested, obj.currency)

    @admin.display(description=_("amount approved"))
    def money_approved(self, obj):
        return money(obj.amount_approved, obj.currency)

    @admin.display(description=_("amount paid"))
    def money_paid(self, obj):
        return money(obj.amount_paid, obj.currency)

    @admin.display(description=_("first approved by"))
    def first_approved_by_name(self, obj):
        return person(obj.first_approved_by)

    @admin.display(description=_("verdict by"))
    def verdict_by_name(self, obj):
        return person(obj.verdict_by)

    # --- extra pages ---------------------------------------------------------------------

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("create-for-customer/", wrap(self.create_for_customer_view), name="refunds_refundrequest_create"),
            path("export/", wrap(self.export_view), name="refunds_refundrequest_export"),
            path("<int:object_id>/evidence/", wrap(self.evidence_view), name="refunds_refundrequest_evidence"),
            path("<int:object_id>/inspection-photo/", wrap(self.photo_view), name="refunds_refundrequest_photo"),
            path("<int:object_id>/act/<str:action>/", wrap(self.action_view), name="refunds_refundrequest_act"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_create_for_customer": request.user.has_perm(perms.CREATE_FOR_CUSTOMER),
            "can_export": request.user.has_perm(perms.EXPORT_PAYOUT),
            "export_query": _export_prefill(request.GET).urlencode(),
        }
        return super().changelist_view(request, extra_context)

    def export_view(self, request):
        """Finance's export of refund requests: its own filter (state, channels picked from a
        list, creation days), prefilled from the list's; the file at once or in the background."""
        if not request.user.has_perm(perms.EXPORT_PAYOUT):
            raise PermissionDenied
        data = request.GET.copy()
        fmt = data.pop("format", [""])[-1]
        if not fmt:  # the form, with the list's filter as its starting values
            form = selectors_exports.RefundRequestFilterForm(initial=_export_initial(data))
            return self._export_page(request, form, status=200)
        if fmt not in EXPORTERS:
            raise Http404
        try:
            filters = selectors_exports.refund_request_filters(data)
        except selectors_exports.ExportFilterError:
            # The same form's errors, beside its fields; nothing is written or queued.
            return self._export_page(request, selectors_exports.RefundRequestFilterForm(data), status=400)
        rows = selectors_exports.refund_request_export_rows(user=request.user, filters=filters)
        return export_response(
            request,
            what=Export.What.REFUND_REQUESTS,
            fmt=fmt,
            resource=RefundRequestResource(),
            rows=rows,
            filters=filters,
        )

    def _export_page(self, request, form, status):
        context = {
            **self.admin_site.each_context(request),
            "title": _("Export refund requests"),
            "opts": self.model._meta,
            "form": form,
            "inline_max": f"{settings.EXPORT_INLINE_MAX_ROWS:,}",
        }
        return TemplateResponse(request, "admin/refunds/refundrequest/export.html", context, status=status)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        refund = selectors.refund_for_page(int(object_id)) if str(object_id).isdigit() else None
        if refund is not None and self.has_view_permission(request, refund):
            extra_context = {**(extra_context or {}), **self._page_context(request, refund)}
        return super().change_view(request, object_id, form_url, extra_context)

    def _page_context(self, request, refund):
        user = request.user
        buttons = []
        for name, (label, perm, form_class, states, _call) in ACTIONS.items():
            if refund.state in states and user.has_perm(perm):
                if name == "verdict" and not refund.escalation_reason:
                    continue
                buttons.append(
                    {
                        "name": name,
                        "label": label,
                        "form": form_class(prefix=name),
                        "url": reverse("admin:refunds_refundrequest_act", args=[refund.pk, name]),
                    }
                )
        customer = refund.customer
        return {
            "refund": refund,
            "buttons": buttons,
            "events": selectors.refund_events(refund.pk),
            "lines": refund.lines.all(),
            "show_customer": can_see_customers(user),
            "customer_name": customer.name,
            "customer_phone": phone_for(user, customer.phone),
            "customer_email": email_for(user, customer.email),
            "can_view_evidence": user.has_perm(perms.VIEW_EVIDENCE),
            "evidence_url": reverse("admin:refunds_refundrequest_evidence", args=[refund.pk]),
        }

    def action_view(self, request, object_id, action):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if action not in ACTIONS:
            raise Http404
        _label, perm, form_class, _states, call = ACTIONS[action]
        # Refused here, by the server, whatever the page showed.
        if not request.user.has_perm(perm):
            raise PermissionDenied
        refund = RefundRequest.objects.filter(pk=object_id).only("pk").first()
        if refund is None:
            raise Http404
        page = reverse("admin:refunds_refundrequest_change", args=[object_id])
        form = form_class(request.POST, prefix=action)
        if not form.is_valid():
            for errors in form.errors.values():
                self.message_user(request, " ".join(errors), messages.ERROR)
            return HttpResponseRedirect(page)
        try:
            call(int(object_id), Actor.for_user(request.user), form.cleaned_data)
        except RefundError as exc:
            self.message_user(request, error_text(exc), messages.ERROR)
        else:
            self.message_user(request, SUCCESS[action] % {"number": refund.number}, messages.SUCCESS)
        return HttpResponseRedirect(page)

    def photo_view(self, request, object_id):
        """The warehouse's inspection photo, to whoever may see the inspection (the warehouse that
        took it, support) or open the request's page. Uploads are never served from MEDIA_URL:
        nothing routes it, so only this view hands them out, read through the storage."""
        inspection = Inspection.objects.filter(request_id=object_id).select_related("request").first()
        if inspection is None or not inspection.photo:
            raise Http404
        if not (request.user.has_perm(perms.VIEW_INSPECTION) or self.has_view_permission(request, inspection.request)):
            raise PermissionDenied
        name = Path(inspection.photo.name).name
        # Shown in the browser only if it is a picture; anything else (the upload is any file)
        # is a download, and the sandbox keeps an uploaded page from running as this site.
        inline = (mimetypes.guess_type(name)[0] or "").startswith("image/") and not name.lower().endswith(".svg")
        response = FileResponse(inspection.photo.open("rb"), filename=name, as_attachment=not inline)
        response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; sandbox"
        return response

    def evidence_view(self, request, object_id):
        if not request.user.has_perm(perms.VIEW_EVIDENCE):
            raise PermissionDenied
        refund = selectors.refund_for_page(object_id)
        if refund is None:
            raise Http404
        context = {
            **self.admin_site.each_context(request),
            "title": _("Evidence report for %(number)s") % {"number": refund.number},
            "opts": self.model._meta,
            "refund": refund,
            "original": refund,
            "ev": evidence_for_display(refund.evidence, request.user),
            "trace": refund.rule_trace or [],
            "change_url": reverse("admin:refunds_refundrequest_change", args=[refund.pk]),
        }
        return TemplateResponse(request, "admin/refunds/refundrequest/evidence.html", context)

    def create_for_customer_view(self, request):
        if not request.user.has_perm(perms.CREATE_FOR_CUSTOMER):
            raise PermissionDenied
        if request.method == "POST":
            return self._create_for_customer_post(request)
        number = request.GET.get("order", "").strip()
        orders = []
        order = None
        if number:
            orders = list(Order.objects.filter(number=number).select_related("channel", "customer").order_by("pk")[:20])
            wanted = request.GET.get("order_id")
            if wanted and wanted.isdigit():
                order = next((o for o in orders if o.pk == int(wanted)), None)
            elif len(orders) == 1:
                order = orders[0]
        context = {
            **self.admin_site.each_context(request),
            "title": _("Create a refund request for a customer"),
            "opts": self.model._meta,
            "number": number,
            "orders": orders,
            "order": order,
            "lines": list(order.lines.order_by("pk")) if order else [],
            "customer_phone": phone_for(request.user, order.customer.phone) if order else "",
            "reasons": Reason.choices,
            "kinds": RefundRequest.Kind.choices,
            "methods": RefundMethod.choices,
            "idempotency_key": uuid.uuid4().hex,
        }
        return TemplateResponse(request, "admin/refunds/refundrequest/create_for_customer.html", context)

    def _create_for_customer_post(self, request):
        post = request.POST
        order = Order.objects.filter(pk=post.get("order_id") or 0).select_related("channel").first()
        if order is None:
            raise Http404
        lines = []
        for sku in post.getlist("sku"):
            qty = post.get(f"qty-{sku}", "").strip()
            if not qty.isdigit():
                self.message_user(request, _("Quantity for %(sku)s must be a whole number.") % {"sku": sku}, messages.ERROR)
                return HttpResponseRedirect(self._create_url(order))
            lines.append(services.LineRequest(sku=sku, quantity=int(qty)))
        if not lines:
            self.message_user(request, _("Tick at least one line."), messages.ERROR)
            return HttpResponseRedirect(self._create_url(order))
        body = {
            "order": order.pk,
            "lines": [(ln.sku, ln.quantity) for ln in lines],
            "kind": post.get("kind", ""),
            "reason": post.get("reason", ""),
            "method": post.get("refund_method", ""),
            "note": post.get("customer_note", ""),
        }
        try:
            refund, _created = services.refund_submit(
                actor=Actor.for_user(request.user),
                channel=support_chat_channel(),
                order_channel=order.channel,
                idempotency_key=post.get("idempotency_key", ""),
                order_number=order.number,
                kind=body["kind"],
                reason=body["reason"],
                lines=lines,
                refund_method=body["method"],
                customer_note=body["note"],
                body_fingerprint=hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest(),
            )
        except RefundError as exc:
            self.message_user(request, error_text(exc), messages.ERROR)
            return HttpResponseRedirect(self._create_url(order))
        self.message_user(request, _("%(number)s was created for the customer.") % {"number": refund.number}, messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:refunds_refundrequest_change", args=[refund.pk]))

    def _create_url(self, order):
        return f"{reverse('admin:refunds_refundrequest_create')}?order={order.number}&order_id={order.pk}"


def _export_prefill(query) -> QueryDict:
    """The list's filter (its state, its channel) as the export form's starting values."""
    out = QueryDict(mutable=True)
    state = query.get(QueueFilter.parameter_name, "")
    if state in State.values:
        out["state"] = state
    channel = query.get("channel__id__exact", "")
    if channel.isdigit():
        out["channels"] = channel
    return out


def _export_initial(query) -> dict:
    initial = {}
    if query.get("state", "") in State.values:
        initial["state"] = query["state"]
    channels = [c for c in query.getlist("channels") if c.isdigit()]
    if channels:
        initial["channels"] = channels
    return initial


def support_chat_channel() -> Channel:
    """The channel support's own requests arrive on; made the first time support uses it."""
    channel = Channel.objects.filter(kind=Channel.Kind.SUPPORT_CHAT).order_by("pk").first()
    if channel is None:
        channel, _created = Channel.objects.get_or_create(name="Support chat", defaults={"kind": Channel.Kind.SUPPORT_CHAT})
    return channel


def _dt(value):
    return parse_datetime(value) if isinstance(value, str) else value


def evidence_for_display(evidence: dict, user) -> dict:
    """The stored snapshot, with datetimes parsed and payment details masked for this user."""
    ev = json.loads(json.dumps(evidence or {}))
    order = ev.get("order") or {}
    order["placed_at"] = _dt(order.get("placed_at"))
    for h in order.get("history") or []:
        h["at"] = _dt(h.get("at"))
    payment = ev.get("payment")
    if payment:
        payment["reference"] = reference_for(user, payment.get("reference", ""))
        payment["paid_at"] = _dt(payment.get("paid_at"))
    for s in ev.get("shipments") or []:
        s["shipped_at"], s["delivered_at"] = _dt(s.get("shipped_at")), _dt(s.get("delivered_at"))
        for e in s.get("events") or []:
            e["at"] = _dt(e.get("at"))
    for m in ev.get("messages") or []:
        m["at"] = _dt(m.get("at"))
    for a in ev.get("address_changes") or []:
        a["at"] = _dt(a.get("at"))
    ev["captured_at"] = _dt(ev.get("captured_at"))
    ev["customer_since"] = _dt((ev.get("customer") or {}).get("since"))
    ev["full_pii"] = pii_level(user) == FULL
    return ev
