"""Admin screens: finance — the payout queue, failed payouts, batches, reconciliation, exports.

Every button and action makes one service call and turns a `RefundError` into a message;
nothing here changes a payout's state by itself. Server-side checks: the pages need the
model's view permission, each action its own permission, and the services check again.
"""

import csv
import io
from collections import Counter, defaultdict
from datetime import timedelta
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince, timeuntil
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from openpyxl import Workbook

from config.actors import Actor
from config.admin_kit import LargeTableAdmin, ReadOnlyAdminMixin, person
from config.money import money
from config.q2 import enqueue_on_commit
from refunds import permissions as perms
from refunds import reconciliation, selectors_exports, selectors_finance, services
from refunds.admin.exports import export_response
from refunds.errors import RefundError
from refunds.models import Export, Payout, PayoutBatch, ReconciliationDifference, RefundMethod
from refunds.resources import EXPORTERS, PayoutResource, _cell, xlsx_cells

# select_across hands the action the whole filtered queryset; above this we ask finance to
# narrow the filter rather than approve an unbounded set in one click.
MAX_BULK = 20_000


def _payout_filters(query) -> dict:
    """The payout list's querystring as an export's filter; ordering and page don't narrow it."""
    return selectors_exports.payout_filters({k: v for k, v in query.items() if k not in ("o", "p")})


def _require(request, perm: str) -> None:
    if not request.user.has_perm(perm):
        raise PermissionDenied


def _cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


class PayoutStateFilter(admin.SimpleListFilter):
    """State filter whose default (no parameter) is the queue: `pending_approval`."""

    title = gettext_lazy("state")
    parameter_name = "state"
    ALL = selectors_exports.ALL

    def lookups(self, request, model_admin):
        return [*Payout.State.choices, (self.ALL, gettext_lazy("All"))]

    def queryset(self, request, queryset):
        value = self.value() or Payout.State.PENDING_APPROVAL
        if value != self.ALL and value not in Payout.State.values:
            return queryset.none()
        return selectors_exports.payouts_filtered(queryset, state=value)

    def choices(self, changelist):
        current = self.value() or Payout.State.PENDING_APPROVAL
        for value, label in self.lookup_choices:
            yield {
                "selected": current == str(value),
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }


class PayoutMethodFilter(admin.SimpleListFilter):
    title = gettext_lazy("method")
    parameter_name = "method"

    def lookups(self, request, model_admin):
        return RefundMethod.choices

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if value not in RefundMethod.values:
            return queryset.none()
        return selectors_exports.payouts_filtered(queryset, method=value)


@admin.register(Payout)
class PayoutAdmin(ReadOnlyAdminMixin, LargeTableAdmin, admin.ModelAdmin):
    list_display = ["payout_no", "request_no", "customer", "method", "amount_cell", "age", "first_approver", "row_buttons"]
    list_filter = [PayoutStateFilter, PayoutMethodFilter]
    list_select_related = ["request__customer", "first_approved_by"]
    ordering = ["created_at", "pk"]
    list_per_page = 100
    search_fields = ["=id", "=request__id", "=request__order__number"]
    search_help_text = gettext_lazy("A payout number (PO-000123), a request number (RF-000123) or an order number.")
    actions = ["approve_selected", "void_selected", "retry_selected", "export_csv", "export_xlsx"]
    readonly_fields = [
        "request",
        "method",
        "amount_money",
        "state",
        "batch",
        "first_approved_by_name",
        "first_approved_at",
        "approved_by_name",
        "approved_at",
        "attempts",
        "processing_started_at",
        "succeeded_at",
        "failed_at",
        "voided_at",
        "gateway_reference",
        "error",
        "failure_permanent",
        "outcome_unknown_at",
        "status_checks",
        "status_checked_at",
        "status_answer",
        "next_status_check_at",
        "idempotency_key",
        "created_at",
    ]
    fields = readonly_fields
    change_list_template = "admin/refunds/payout/change_list.html"
    change_form_template = "admin/refunds/payout/change_form.html"

    # --- permissions: rows are read-only (ReadOnlyAdminMixin); transitions go through services

    def has_approve_permission(self, request):
        return request.user.has_perm(perms.APPROVE_PAYOUT)

    def has_retry_permission(self, request):
        return request.user.has_perm(perms.RETRY_PAYOUT)

    def has_export_permission(self, request):
        return request.user.has_perm(perms.EXPORT_PAYOUT)

    # --- the list --------------------------------------------------------------------------

    def get_queryset(self, request):
        return selectors_finance.payout_queue()

    def get_list_display(self, request):
        if request.GET.get("state") == Payout.State.OUTCOME_UNKNOWN:
            return [
                "payout_no",
                "request_no",
                "customer",
                "method",
                "amount_cell",
                "unknown_since",
                "error",
                "status_checks",
                "status_answer",
                "next_question",
                "row_buttons",
            ]
        if request.GET.get("state") == Payout.State.FAILED:
            return [
                "payout_no",
                "request_no",
                "customer",
                "method",
                "amount_cell",
                "attempts",
                "failed_at",
                "error",
                "row_buttons",
            ]
        return super().get_list_display(request)

    def get_search_results(self, request, queryset, search_term):
        return selectors_exports.payouts_filtered(queryset, q=search_term), False

    @admin.display(description=gettext_lazy("payout"), ordering="pk")
    def payout_no(self, obj):
        return str(obj)

    @admin.display(description=gettext_lazy("request"))
    def request_no(self, obj):
        return obj.request.number

    @admin.display(description=gettext_lazy("customer"))
    def customer(self, obj):
        c = obj.request.customer
        return format_html("{}<br><small>{}</small>", c.name, c.phone)

    @admin.display(description=gettext_lazy("amount"), ordering="amount")
    def amount_cell(self, obj):
        # Integer cents in a data attribute: the running total in the page sums integers.
        return format_html(
            '<span class="payout-amount" data-cents="{}" data-currency="{}">{}</span>',
            _cents(obj.amount),
            obj.currency,
            money(obj.amount, obj.currency),
        )

    @admin.display(description=gettext_lazy("amount"))
    def amount_money(self, obj):
        return money(obj.amount, obj.currency)

    @admin.display(description=gettext_lazy("first approved by"))
    def first_approved_by_name(self, obj):
        return person(obj.first_approved_by)

    @admin.display(description=gettext_lazy("approved by"))
    def approved_by_name(self, obj):
        return person(obj.approved_by)

    @admin.display(description=gettext_lazy("age"), ordering="created_at")
    def age(self, obj):
        return timesince(obj.created_at)

    @admin.display(description=gettext_lazy("outcome unknown for"), ordering="outcome_unknown_at")
    def unknown_since(self, obj):
        return timesince(obj.outcome_unknown_at) if obj.outcome_unknown_at else "—"

    @admin.display(description=gettext_lazy("next query"), ordering="next_status_check_at")
    def next_question(self, obj):
        if not obj.next_status_check_at:
            return "—"
        if obj.next_status_check_at <= timezone.now():
            return _("due now")
        return _("in %(wait)s") % {"wait": timeuntil(obj.next_status_check_at)}

    @admin.display(description=gettext_lazy("first approver"))
    def first_approver(self, obj):
        return person(obj.first_approved_by) if obj.first_approved_by_id else "—"

    @admin.display(description="")
    def row_buttons(self, obj):
        # `formaction` reuses the changelist form (and its CSRF token) for a one-row POST.
        if obj.state == Payout.State.PENDING_APPROVAL:
            # A link to the confirmation page: nothing is approved before its own POST.
            return format_html(
                '<a class="button" href="{}">{}</a>', reverse("admin:refunds_payout_approve", args=[obj.pk]), _("Approve…")
            )
        if obj.state == Payout.State.FAILED and obj.failure_permanent:
            # Retrying a closed card can't help: offer the other methods on the payout's page.
            return format_html(
                '<a class="button" href="{}">{}</a>',
                reverse("admin:refunds_payout_change", args=[obj.pk]),
                _("Pay another way…"),
            )
        if obj.state == Payout.State.FAILED:
            return format_html(
                '<button type="submit" class="button" formaction="{}">{}</button>',
                reverse("admin:refunds_payout_retry", args=[obj.pk]),
                _("Retry"),
            )
        if obj.state == Payout.State.OUTCOME_UNKNOWN:
            return format_html(
                '<button type="submit" class="button" formaction="{}">{}</button>',
                reverse("admin:refunds_payout_ask", args=[obj.pk]),
                _("Ask the gateway now"),
            )
        return ""

    def changelist_view(self, request, extra_context=None):
        state = request.GET.get("state") or Payout.State.PENDING_APPROVAL
        title = (
            _("Payouts: %(state)s") % {"state": Payout.State(state).label.lower()}
            if state in Payout.State.values
            else _("Payouts")
        )
        extra_context = {
            "title": title,
            **(extra_context or {}),
            "can_export": self.has_export_permission(request),
            "export_query": request.GET.urlencode(),
            "four_eyes_above": services.four_eyes_limit(),
            "state": state,
        }
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_approve": self.has_approve_permission(request),
            "can_retry": self.has_retry_permission(request),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    # --- actions ---------------------------------------------------------------------------

    def _actor(self, request) -> Actor:
        return Actor.for_user(request.user)

    @admin.action(description=gettext_lazy("Approve selected payouts"), permissions=["approve"])
    def approve_selected(self, request, queryset):
        """First POST (the action): the confirmation page, nothing approved. Its POST (`confirm`
        with the digest of what it showed) approves; a selection changed meanwhile is shown again."""
        ids = list(queryset.order_by().values_list("pk", flat=True)[: MAX_BULK + 1])
        if len(ids) > MAX_BULK:
            self.message_user(
                request, _("More than %(n)s payouts selected; narrow the filter.") % {"n": MAX_BULK}, messages.ERROR
            )
            return None
        preview = self._preview(request, ids)
        confirmed = request.POST.get("confirm") == "yes"
        if confirmed and request.POST.get("digest") == preview.digest:
            try:
                result = services.payout_approve_bulk(payout_ids=ids, actor=self._actor(request))
            except RefundError as exc:
                self.message_user(request, exc.message, messages.ERROR)
                return None
            self._report_bulk(request, result)
            return None
        hidden = [("action", "approve_selected"), ("select_across", request.POST.get("select_across", "0"))]
        # Django runs an action posted without `index` (a confirmation page's) only if some box
        # is ticked; with "select all" the boxes don't narrow it, so one empty box will do.
        hidden += [(ACTION_CHECKBOX_NAME, pk) for pk in request.POST.getlist(ACTION_CHECKBOX_NAME) or [""]]
        query = request.GET.urlencode()
        return self._confirmation(
            request,
            preview,
            hidden=hidden,
            action_url=reverse("admin:refunds_payout_changelist") + (f"?{query}" if query else ""),
            back_url=reverse("admin:refunds_payout_changelist") + (f"?{query}" if query else ""),
            changed=confirmed,
        )

    def _preview(self, request, ids):
        return selectors_finance.payout_approval_preview(
            payout_ids=ids, user_id=request.user.pk, limit=services.four_eyes_limit()
        )

    def _confirmation(self, request, preview, *, hidden, action_url, back_url, changed):
        outcomes = preview.outcomes
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Approve payouts?"),
            "preview": preview,
            "approve": outcomes[selectors_finance.APPROVE],
            "first": outcomes[selectors_finance.FIRST_APPROVAL],
            "approved_first": outcomes[selectors_finance.APPROVED_FIRST],
            "own_request": outcomes[selectors_finance.OWN_REQUEST],
            "not_pending": outcomes[selectors_finance.NOT_PENDING],
            "hidden": hidden,
            "action_url": action_url,
            "back_url": back_url,
            "changed": changed,
        }
        return TemplateResponse(request, "admin/refunds/payout/approve_confirmation.html", context)

    def _report_bulk(self, request, result) -> None:
        if result.approved:
            self.message_user(
                request,
                ngettext(
                    "Approved %(n)d payout (batch %(batch)s); it is being paid.",
                    "Approved %(n)d payouts (batch %(batch)s); they are being paid.",
                    len(result.approved),
                )
                % {"n": len(result.approved), "batch": result.batch},
                messages.SUCCESS,
            )
        if result.first_approvals:
            self.message_user(
                request,
                ngettext(
                    "First approval recorded on %(n)d payout above %(limit)s: a second, different finance approver must approve it.",
                    "First approval recorded on %(n)d payouts above %(limit)s: a second, different finance approver must approve them.",
                    len(result.first_approvals),
                )
                % {"n": len(result.first_approvals), "limit": services.four_eyes_limit()},
                messages.WARNING,
            )
        if result.skipped:
            by_reason = defaultdict(list)
            for pk, reason in sorted(result.skipped.items()):
                by_reason[reason].append(pk)
            parts = []
            for reason, pks in by_reason.items():
                shown = ", ".join(f"PO-{pk:06d}" for pk in pks[:10]) + ("…" if len(pks) > 10 else "")
                parts.append(f"{len(pks)} {reason} ({shown})")
            self.message_user(
                request, _("Skipped %(n)d: %(why)s.") % {"n": len(result.skipped), "why": "; ".join(parts)}, messages.WARNING
            )
        if not (result.approved or result.first_approvals or result.skipped):
            self.message_user(request, _("Nothing to approve."), messages.INFO)

    def _one_by_one(self, request, queryset, service, verb: str, limit: int = 200):
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[: limit + 1])
        if len(ids) > limit:
            self.message_user(request, _("Select at most %(n)d payouts for this action.") % {"n": limit}, messages.ERROR)
            return
        done, errors = 0, Counter()
        for pk in ids:
            try:
                service(payout_id=pk, actor=self._actor(request))
                done += 1
            except RefundError as exc:
                errors[exc.message] += 1
        if done:
            self.message_user(request, _("%(verb)s %(n)d payout(s).") % {"verb": verb, "n": done}, messages.SUCCESS)
        for message, n in errors.items():
            self.message_user(request, f"{message}" + (f" (×{n})" if n > 1 else ""), messages.ERROR)

    @admin.action(description=gettext_lazy("Void selected payouts"), permissions=["approve"])
    def void_selected(self, request, queryset):
        self._one_by_one(request, queryset, services.payout_void, _("Voided"))

    @admin.action(description=gettext_lazy("Retry selected failed payouts"), permissions=["retry"])
    def retry_selected(self, request, queryset):
        self._one_by_one(request, queryset, services.payout_retry, _("Retried"))

    @admin.action(description=gettext_lazy("Export to CSV"), permissions=["export"])
    def export_csv(self, request, queryset):
        return self._export_action(request, queryset, "csv")

    @admin.action(description=gettext_lazy("Export to XLSX"), permissions=["export"])
    def export_xlsx(self, request, queryset):
        return self._export_action(request, queryset, "xlsx")

    def _export_action(self, request, queryset, fmt):
        if request.POST.get("select_across") != "1":  # ticked rows: one page at most
            rows = selectors_exports.payout_export_rows(user=request.user, filters={"state": selectors_exports.ALL})
            name = f"payouts-selected-{timezone.localdate().isoformat()}"
            return EXPORTERS[fmt](PayoutResource(), rows.filter(pk__in=queryset.order_by().values("pk")), name)
        # "Select all": the whole filter, which the changelist's querystring describes.
        return self.export_view(request, fmt)

    # --- single-object buttons and custom views ------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/approve/", view(self.approve_view), name="refunds_payout_approve"),
            path("<int:pk>/void/", view(self.void_view), name="refunds_payout_void"),
            path("<int:pk>/retry/", view(self.retry_view), name="refunds_payout_retry"),
            path("<int:pk>/ask/", view(self.ask_view), name="refunds_payout_ask"),
            path("export/<str:fmt>/", view(self.export_view), name="refunds_payout_export"),
            path("reconciliation/", view(self.reconciliation_view), name="refunds_payout_reconciliation"),
            *super().get_urls(),
        ]

    def _single(self, request, pk: int, perm: str, service, done_message: str, **extra):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        _require(request, perm)
        try:
            payout = service(payout_id=pk, actor=self._actor(request), **extra)
        except RefundError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            if payout.state == Payout.State.PENDING_APPROVAL and payout.first_approved_by_id:
                self.message_user(
                    request,
                    _("%(p)s: first approval recorded; a second, different finance approver must approve it.") % {"p": payout},
                    messages.WARNING,
                )
            else:
                self.message_user(request, done_message % {"p": payout}, messages.SUCCESS)
        nxt = request.POST.get("next", "")
        if nxt.startswith("/admin/"):
            return HttpResponseRedirect(nxt)
        return HttpResponseRedirect(request.META.get("HTTP_REFERER") or reverse("admin:refunds_payout_changelist"))

    def approve_view(self, request, pk):
        """GET, or a POST from a row's button: the confirmation page. Its POST approves."""
        _require(request, perms.APPROVE_PAYOUT)
        preview = self._preview(request, [pk])
        if preview.missing:
            raise Http404
        confirmed = request.method == "POST" and request.POST.get("confirm") == "yes"
        if confirmed and request.POST.get("digest") == preview.digest:
            return self._single(
                request, pk, perms.APPROVE_PAYOUT, services.payout_approve, _("%(p)s approved; it is being paid.")
            )
        nxt = request.POST.get("next", "") or request.GET.get("next", "")
        back = nxt if nxt.startswith("/admin/") else reverse("admin:refunds_payout_changelist")
        return self._confirmation(
            request,
            preview,
            hidden=[("next", back)],
            action_url=reverse("admin:refunds_payout_approve", args=[pk]),
            back_url=back,
            changed=confirmed,
        )

    def void_view(self, request, pk):
        return self._single(
            request,
            pk,
            perms.APPROVE_PAYOUT,
            services.payout_void,
            _("%(p)s voided."),
            reissue_method=request.POST.get("reissue_method", ""),
        )

    def retry_view(self, request, pk):
        return self._single(request, pk, perms.RETRY_PAYOUT, services.payout_retry, _("%(p)s sent to the gateway again."))

    def ask_view(self, request, pk):
        return self._single(
            request,
            pk,
            perms.APPROVE_PAYOUT,
            services.payout_ask_gateway,
            _("%(p)s: the gateway is being asked what became of it; this page shows its answer when it comes."),
        )

    def export_view(self, request, fmt):
        """Export every payout the current filter matches (the changelist's own querystring)."""
        _require(request, perms.EXPORT_PAYOUT)
        if fmt not in EXPORTERS:
            raise Http404
        try:
            filters = _payout_filters(request.GET)
            rows = selectors_exports.payout_export_rows(user=request.user, filters=filters)
        except selectors_exports.ExportFilterError:
            self.message_user(request, _("The filter is not valid; choose it again on the list."), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:refunds_payout_changelist"))
        return export_response(request, what=Export.What.PAYOUTS, fmt=fmt, resource=PayoutResource(), rows=rows, filters=filters)

    def reconciliation_view(self, request):
        _require(request, perms.VIEW_PAYOUT)
        if request.method == "POST":
            return self._reconcile_day(request)
        today = timezone.localdate()
        form = ReconciliationForm(request.GET or {"start": today - timedelta(days=6), "end": today})
        rows, totals, checks = [], {}, []
        if form.is_valid():
            start, end = form.cleaned_data["start"], form.cleaned_data["end"]
            rows = selectors_finance.reconciliation_by_day(start=start, end=end)
            for r in rows:
                t = totals.setdefault(r["currency"], {"count": 0, "total": Decimal("0.00")})
                t["count"] += r["count"]
                t["total"] += r["total"]
            fmt = request.GET.get("format")
            if fmt in EXPORTERS:
                _require(request, perms.EXPORT_PAYOUT)
                return _reconciliation_file(rows, fmt, start, end)
            runs = selectors_finance.reconciliation_runs_by_day(start=start, end=min(end, today))
            day = min(end, today)
            while day >= start:
                checks.append((day, runs.get(day)))
                day -= timedelta(days=1)
        differences = list(selectors_finance.open_differences()[:200])
        return TemplateResponse(
            request,
            "admin/refunds/payout/reconciliation.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": _("Daily reconciliation"),
                "form": form,
                "rows": rows,
                "totals": sorted(totals.items()),
                "checks": checks,
                "differences": differences,
                "can_reconcile": request.user.has_perm(perms.RECONCILE_PAYOUT),
                "can_export": request.user.has_perm(perms.EXPORT_PAYOUT),
                "query": request.GET.urlencode(),
            },
        )

    def _reconcile_day(self, request):
        """Finance's button: check one day against the gateway's books, in the background."""
        _require(request, perms.RECONCILE_PAYOUT)
        form = forms.Form(request.POST)
        form.fields["day"] = forms.DateField()
        back = reverse("admin:refunds_payout_reconciliation") + (f"?{request.GET.urlencode()}" if request.GET else "")
        if not form.is_valid() or form.cleaned_data["day"] > timezone.localdate():
            self.message_user(request, _("Choose a day that has happened."), messages.ERROR)
            return HttpResponseRedirect(back)
        day = form.cleaned_data["day"]
        # Nothing is saved before the run starts, so no sweeper would find a lost task: say so.
        queued = enqueue_on_commit("refunds.tasks.reconciliation_run_task", day.isoformat(), request.user.pk)
        if queued.ok is False:
            self.message_user(
                request,
                _("%(day)s could not be queued for checking: the background queue is unreachable. Try again in a few minutes.")
                % {"day": day},
                messages.ERROR,
            )
            return HttpResponseRedirect(back)
        self.message_user(
            request,
            _("%(day)s is being checked against the gateway's books; reload this page for the result.") % {"day": day},
            messages.SUCCESS,
        )
        return HttpResponseRedirect(back)


class ReconciliationForm(forms.Form):
    start = forms.DateField(label=gettext_lazy("from"), widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=gettext_lazy("to"), widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end"):
            if data["end"] < data["start"]:
                raise forms.ValidationError(_("The end date is before the start date."))
            if (data["end"] - data["start"]).days > 366:
                raise forms.ValidationError(_("Choose at most a year."))
        return data


def _reconciliation_file(rows, fmt, start, end):
    headers = ["day", "method", "currency", "count", "total", "method code"]
    table = [headers] + [[r["day"], r["method_label"], r["currency"], r["count"], r["total"], r["method"]] for r in rows]
    return _small_table_response(table, fmt, f"reconciliation-{start}-{end}")


def _small_table_response(table, fmt, filename):
    """A few hundred aggregated rows: built in memory, unlike the list exports."""
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        for row in table:
            writer.writerow([_cell(v) for v in row])
        response = HttpResponse("\ufeff" + buf.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
        return response
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("reconciliation")
    for row in table:
        ws.append(xlsx_cells(ws, [_cell(v) for v in row]))
    buf = io.BytesIO()
    wb.save(buf)
    response = HttpResponse(buf.getvalue(), content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    response["Content-Disposition"] = f'attachment; filename="{filename}.xlsx"'
    return response


@admin.register(PayoutBatch)
class PayoutBatchAdmin(ReadOnlyAdminMixin, LargeTableAdmin, admin.ModelAdmin):
    list_display = ["__str__", "created_by_name", "created_at", "batch_size", "batch_total", "note"]
    list_select_related = ["created_by"]
    ordering = ["-created_at", "-pk"]
    list_per_page = 100
    fields = ["created_by_name", "created_at", "note"]
    readonly_fields = fields

    def get_queryset(self, request):
        return selectors_finance.payout_batch_list()

    @admin.display(description=gettext_lazy("payouts"))
    def batch_size(self, obj):
        return obj.payout_count or 0

    @admin.display(description=gettext_lazy("created by"))
    def created_by_name(self, obj):
        return person(obj.created_by)

    @admin.display(description=gettext_lazy("total"))
    def batch_total(self, obj):
        if obj.payout_currency is None:
            return "—"
        if obj.payout_currency != obj.payout_currency_last:  # a batch of several currencies has no one sum
            return _("several currencies")
        return money(obj.payout_total, obj.payout_currency)


@admin.register(ReconciliationDifference)
class ReconciliationDifferenceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Differences with the gateway's books: each stays open until a person says what was done."""

    list_display = [
        "__str__",
        "day",
        "payout_link",
        "payment_reference",
        "gateway_reference",
        "amounts",
        "first_seen_at",
        "resolved",
    ]
    list_filter = [("resolved_at", admin.EmptyFieldListFilter), "kind", "day"]
    list_select_related = ["payout", "resolved_by"]
    ordering = ["resolved_at", "day", "pk"]
    list_per_page = 100
    search_fields = ["=payment_reference", "=gateway_reference", "=idempotency_key"]
    fields = [
        "kind",
        "day",
        "payout",
        "payment_reference",
        "gateway_reference",
        "idempotency_key",
        "gateway_amount",
        "our_amount",
        "currency",
        "first_seen_at",
        "last_seen_at",
        "resolved_at",
        "resolved_by_name",
        "resolution_note",
    ]
    readonly_fields = fields
    change_form_template = "admin/refunds/reconciliationdifference/change_form.html"

    @admin.display(description=gettext_lazy("payout"))
    def payout_link(self, obj):
        if obj.payout_id is None:
            return _("none of ours")
        return format_html('<a href="{}">{}</a>', reverse("admin:refunds_payout_change", args=[obj.payout_id]), obj.payout)

    @admin.display(description=gettext_lazy("gateway / ours"))
    def amounts(self, obj):
        return f"{money(obj.gateway_amount, obj.currency)} / {money(obj.our_amount, obj.currency)}"

    @admin.display(description=gettext_lazy("resolved by"))
    def resolved_by_name(self, obj):
        return person(obj.resolved_by)

    @admin.display(description=gettext_lazy("resolved"), boolean=True, ordering="resolved_at")
    def resolved(self, obj):
        return obj.resolved_at is not None

    def get_urls(self):
        return [
            path(
                "<int:pk>/resolve/",
                self.admin_site.admin_view(self.resolve_view),
                name="refunds_reconciliationdifference_resolve",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "can_resolve": request.user.has_perm(perms.RECONCILE_PAYOUT)}
        return super().change_view(request, object_id, form_url, extra_context)

    def resolve_view(self, request, pk):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        _require(request, perms.RECONCILE_PAYOUT)
        try:
            n = reconciliation.reconciliation_resolve(
                difference_ids=[pk], actor=Actor.for_user(request.user), note=request.POST.get("note", "")
            )
        except RefundError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            if n:
                self.message_user(request, _("The difference is resolved; what was done is on record."), messages.SUCCESS)
            else:
                self.message_user(request, _("It was already resolved."), messages.INFO)
        return HttpResponseRedirect(reverse("admin:refunds_reconciliationdifference_change", args=[pk]))
