"""Read-mostly admin for orders, customers and channels, masked per role (orders/masking.py).

Orders arrive from the channels; staff read them here and never retype them. Those that
arrive on a spreadsheet instead are imported here, by whoever may add orders (the
administrators: importing speaks for a channel, and channels are theirs, spec/roles.md):
upload, a dry run that names every bad row, then confirm, and the whole file or nothing is
created through the same service as the channel API's orders. Channel keys are never shown,
only their prefix.
"""

import re
import secrets
import tempfile
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import format_lazy
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from config.actors import Actor
from config.admin_kit import LargeTableAdmin, ReadOnlyAdminMixin
from config.errors import DomainError
from config.money import money
from config.uploads import too_big
from orders import selectors, services, services_erasure
from orders.masking import email_for, lookup_touches_masked, may_search_last_four, may_search_masked, phone_for, reference_for
from orders.models import Channel, ChannelKey, Customer, Order, OrderLine
from orders.resources import COLUMNS, FORMATS, channel_names, import_orders, import_template
from orders.services_erasure import PERM_ANONYMIZE
from orders.services_import import PERM_IMPORT


class ViewerMixin:
    """Hands the viewing user to the row objects, so display methods can mask for them."""

    def get_changelist_instance(self, request):
        cl = super().get_changelist_instance(request)
        for obj in cl.result_list:
            obj._viewer = request.user
        return cl

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            obj._viewer = request.user
        return obj


class MaskedSearchMixin:
    """Search and filter by phone only for the roles that see phones (orders.masking).

    `phone_search_field` (e.g. "customer__phone") joins `search_fields` for them; for the
    masked roles a term of exactly four digits finds phones ending in them when
    `last_four_search` is on (those digits are shown to them anyway), and nothing longer
    or shorter searches the phone. A list filter in the URL on a masked column
    (`?phone__startswith=1381234`) is refused for them like any lookup the admin does not
    offer (400).
    """

    phone_search_field: str | None = None
    last_four_search = False

    def get_search_fields(self, request):
        fields = list(super().get_search_fields(request))
        if self.phone_search_field and may_search_masked(request.user):
            fields.append(self.phone_search_field)
        return fields

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if (
            self.phone_search_field
            and self.last_four_search
            and LAST_FOUR.fullmatch(term)
            and not may_search_masked(request.user)
            and may_search_last_four(request.user)
        ):
            results = results | queryset.filter(**{f"{self.phone_search_field}__endswith": term})
        return results, may_have_duplicates

    def lookup_allowed(self, lookup, value, request=None):
        if request is not None and not may_search_masked(request.user) and lookup_touches_masked(self.model, lookup):
            return False
        return super().lookup_allowed(lookup, value, request)


LAST_FOUR = re.compile(r"\d{4}")


def _viewer(obj):
    return getattr(obj, "_viewer", None)


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    fields = ["sku", "name", "quantity", "unit_price_money", "line_total_money", "refunded_quantity", "held_quantity"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("order")

    @admin.display(description=_("unit price"))
    def unit_price_money(self, obj):
        return money(obj.unit_price, obj.order.currency)

    @admin.display(description=_("line total"))
    def line_total_money(self, obj):
        return money(obj.line_total, obj.order.currency)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Order)
class OrderAdmin(MaskedSearchMixin, ReadOnlyAdminMixin, LargeTableAdmin, ViewerMixin, admin.ModelAdmin):
    list_display = ["number", "channel", "customer_name", "state", "paid_money", "refunded_money", "placed_at"]
    list_filter = ["channel", "state"]
    list_select_related = ["channel", "customer"]
    search_fields = ["number"]
    search_help_text = _("An order number (with or without its zeros), a tracking number or a customer.")
    ordering = ["-id"]
    fields = [
        "number",
        "channel",
        "customer_name",
        "customer_phone",
        "state",
        "placed_at",
        "paid_money",
        "refunded_money",
        "held_money",
        "payment_details",
        "shipping_fee_money",
        "delivered_at",
        "refund_requests_list",
    ]
    readonly_fields = fields
    inlines = [OrderLineInline]
    change_list_template = "admin/orders/order/change_list.html"

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("import/", view(self.import_view), name="orders_order_import"),
            path("import/template.<str:fmt>", view(self.import_template_view), name="orders_order_import_template"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_import": request.user.has_perm(PERM_IMPORT)}
        return super().changelist_view(request, extra_context)

    def import_template_view(self, request, fmt):
        if not request.user.has_perm(PERM_IMPORT):
            raise PermissionDenied
        if fmt not in FORMATS:
            raise Http404
        content_type = "text/csv; charset=utf-8" if fmt == "csv" else FORMATS[fmt]().get_content_type()
        response = HttpResponse(import_template(fmt), content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="orders-import-template.{fmt}"'
        return response

    def import_view(self, request):
        """Upload → dry run and preview → confirm: the same staged file is imported for real."""
        if not request.user.has_perm(PERM_IMPORT):
            raise PermissionDenied
        page = reverse("admin:orders_order_import")

        def render(status=200, **extra):
            context = {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": _("Import orders"),
                "form": ImportOrdersForm(),
                "channels": channel_names(),
                **extra,
            }
            return TemplateResponse(request, "admin/orders/order/import.html", context, status=status)

        if request.method != "POST":
            return render()
        actor = Actor.for_user(request.user)
        if "confirm" in request.POST:
            token, fmt = request.POST.get("token", ""), request.POST.get("fmt", "")
            content = _staged_read(request.user.pk, token, fmt)
            if content is None:
                self.message_user(request, gettext("That upload has expired; choose the file again."), messages.ERROR)
                return HttpResponseRedirect(page)
            outcome = import_orders(content=content, fmt=fmt, actor=actor, dry_run=False)
            if not outcome.ok:  # the book changed since the dry run (an order arrived meanwhile)
                return render(status=400, outcome=outcome)
            _staged_remove(request.user.pk, token, fmt)
            self.message_user(
                request,
                gettext("Imported %(orders)d orders (%(lines)d lines).") % {"orders": outcome.orders, "lines": outcome.lines},
                messages.SUCCESS,
            )
            return HttpResponseRedirect(page)
        form = ImportOrdersForm(request.POST, request.FILES)
        if not form.is_valid():
            return render(status=400, form=form)
        upload = form.cleaned_data["file"]
        fmt = upload.name.rsplit(".", 1)[-1].lower() if "." in upload.name else ""
        content = upload.read()
        outcome = import_orders(content=content, fmt=fmt, actor=actor, dry_run=True)
        if not outcome.ok:
            return render(status=400, outcome=outcome)
        return render(outcome=outcome, token=_staged_save(request.user.pk, content, fmt), fmt=fmt, preview=True)

    @admin.display(description=_("refund requests"))
    def refund_requests_list(self, obj):
        """The order's refund requests, newest first, each a link to its page for whoever may
        open it (the page the held amount above points to)."""
        viewer = _viewer(obj)
        rows = obj.refund_requests.order_by("-pk").only("pk", "state", "amount_requested", "currency", "created_at")
        if not rows:
            return "—"
        can_open = viewer is not None and viewer.has_perm("refunds.view_refundrequest")
        return format_html_join(
            mark_safe("<br>"),  # noqa: S308 - a constant
            "{} · {} · {}",
            (
                (
                    format_html('<a href="{}">{}</a>', reverse("admin:refunds_refundrequest_change", args=[r.pk]), r.number)
                    if can_open
                    else r.number,
                    r.get_state_display(),
                    money(r.amount_requested, r.currency),
                )
                for r in rows
            ),
        )

    def get_search_results(self, request, queryset, search_term):
        # By number with or without its zero padding, a tracking number or the customer.
        term = search_term.strip()
        if not term:
            return queryset, False
        ids = [pk for pk, _rank in selectors.order_ids_matching(term, user=request.user, limit=500)]
        return queryset.filter(pk__in=ids), False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("channel", "customer", "payment")

    @admin.display(description=_("customer"))
    def customer_name(self, obj):
        return obj.customer.name or obj.customer.external_id

    @admin.display(description=_("phone"))
    def customer_phone(self, obj):
        return phone_for(_viewer(obj), obj.customer.phone)

    @admin.display(description=_("payment"))
    def payment_details(self, obj):
        payment = getattr(obj, "payment", None)
        if payment is None:
            return "—"
        return f"{payment.method} · {reference_for(_viewer(obj), payment.reference)} · {money(payment.amount, obj.currency)}"

    @admin.display(description=_("paid total"), ordering="paid_total")
    def paid_money(self, obj):
        return money(obj.paid_total, obj.currency)

    @admin.display(description=_("refunded total"), ordering="refunded_total")
    def refunded_money(self, obj):
        return money(obj.refunded_total, obj.currency)

    @admin.display(description=_("held by open requests"))
    def held_money(self, obj):
        return money(obj.held_total, obj.currency)

    @admin.display(description=_("shipping fee"))
    def shipping_fee_money(self, obj):
        return money(obj.shipping_fee, obj.currency)


class ImportOrdersForm(forms.Form):
    file = forms.FileField(
        label=_("XLSX or CSV file"),
        help_text=format_lazy(_("One row per order line; columns: {}"), ", ".join(COLUMNS)),
    )

    def clean_file(self):
        # Refused on its size before a byte of it is read or parsed (IMPORT_MAX_BYTES).
        upload = self.cleaned_data["file"]
        if sentence := too_big(upload.size, settings.IMPORT_MAX_BYTES):
            raise forms.ValidationError(sentence)
        return upload


# The file between preview and confirm: a temp file named by a random token and the user's id,
# so one person can't confirm another's upload and a token can't point anywhere else.
def _staged_path(user_id: int, token: str, fmt: str) -> Path | None:
    if not re.fullmatch(r"[0-9a-f]{32}", token or "") or fmt not in FORMATS:
        return None
    return Path(tempfile.gettempdir()) / f"rd-order-import-{user_id}-{token}.{fmt}"


def _staged_save(user_id: int, content: bytes, fmt: str) -> str:
    token = secrets.token_hex(16)
    _staged_path(user_id, token, fmt).write_bytes(content)
    return token


def _staged_read(user_id: int, token: str, fmt: str) -> bytes | None:
    p = _staged_path(user_id, token, fmt)
    return p.read_bytes() if p is not None and p.exists() else None


def _staged_remove(user_id: int, token: str, fmt: str) -> None:
    p = _staged_path(user_id, token, fmt)
    if p is not None:
        p.unlink(missing_ok=True)


@admin.register(Customer)
class CustomerAdmin(MaskedSearchMixin, ReadOnlyAdminMixin, LargeTableAdmin, ViewerMixin, admin.ModelAdmin):
    list_display = ["display_name", "channel", "external_id", "masked_phone", "masked_email", "created_at"]
    list_filter = ["channel"]
    list_select_related = ["channel"]
    search_fields = ["external_id"]
    search_help_text = _(
        "A name, a customer id, the last four digits of a phone, or for those who see them whole a phone or an e-mail."
    )
    ordering = ["-id"]
    fields = [
        "display_name",
        "channel",
        "external_id",
        "masked_phone",
        "masked_email",
        "language",
        "sms_opt_out",
        "created_at",
        "anonymized_at",
    ]
    readonly_fields = fields
    actions = ["anonymize"]

    def has_anonymize_permission(self, request):
        return request.user.has_perm(PERM_ANONYMIZE)

    @admin.action(description=_("Erase the personal data of the selected customers"), permissions=["anonymize"])
    def anonymize(self, request, queryset):
        """Asks once (erasure can't be undone), then one service call per customer."""
        customers = list(queryset.order_by("pk")[:100])
        if request.POST.get("confirmed") != "yes":
            return TemplateResponse(
                request,
                "admin/orders/customer/anonymize_confirmation.html",
                {
                    **self.admin_site.each_context(request),
                    "title": _("Erase personal data?"),
                    "opts": self.model._meta,
                    "customers": customers,
                    "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                },
            )
        actor = Actor.for_user(request.user)
        done = 0
        for customer in customers:
            try:
                services_erasure.customer_anonymize(customer_id=customer.pk, actor=actor)
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                done += 1
                self.log_change(request, Customer.objects.get(pk=customer.pk), _("Personal data erased."))
        if done:
            self.message_user(
                request,
                ngettext("%d customer's personal data erased.", "%d customers' personal data erased.", done) % done,
                messages.SUCCESS,
            )
        return None

    def get_search_results(self, request, queryset, search_term):
        # Exact lookups on indexed columns only: a LIKE over every customer would scan the table.
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(pk__in=selectors.customer_ids_matching(term, user=request.user, limit=500)), False

    @admin.display(description=_("name"))
    def display_name(self, obj):
        return obj.name or obj.external_id

    @admin.display(description=_("phone"))
    def masked_phone(self, obj):
        return phone_for(_viewer(obj), obj.phone)

    @admin.display(description=_("email"))
    def masked_email(self, obj):
        return email_for(_viewer(obj), obj.email)


class ChannelKeyInline(admin.TabularInline):
    """A channel's keys: prefix, state, expiry (editable) and last use. Deleting one revokes it
    at once; new keys come from the "Issue a new key" action, which shows the key once."""

    model = ChannelKey
    extra = 0
    max_num = len(ChannelKey.SLOTS)
    fields = ["key_prefix", "status", "created_at", "expires_at", "last_used_at"]
    readonly_fields = ["key_prefix", "status", "created_at", "last_used_at"]
    ordering = ["slot"]
    verbose_name_plural = _("keys (delete one to revoke it)")

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description=_("status"))
    def status(self, obj):
        if obj.is_expired():
            return gettext("expired")
        if obj.expires_at is not None:
            return gettext("active, expires %(at)s") % {"at": timezone.localtime(obj.expires_at).strftime("%Y-%m-%d %H:%M")}
        return gettext("active")


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    # New keys are printed once, by `manage.py create_channel` or the "Issue a new key" action.
    list_display = ["name", "kind", "key_prefixes", "is_active", "created_at"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name"]
    ordering = ["name"]
    fields = ["name", "kind", "is_active", "created_at"]
    readonly_fields = ["created_at"]
    inlines = [ChannelKeyInline]
    actions = ["issue_key"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("keys")

    @admin.display(description=_("keys"))
    def key_prefixes(self, obj):
        now = timezone.now()
        keys = sorted(obj.keys.all(), key=lambda k: k.slot)
        return ", ".join(f"{k.key_prefix}…" + (f" ({gettext('expired')})" if k.is_expired(now) else "") for k in keys) or "-"

    @admin.action(description=_("Issue a new key (the other key expires after the rotation period)"))
    def issue_key(self, request, queryset):
        issued = []
        for channel in queryset.order_by("name"):
            try:
                key, raw = services.channel_key_issue(channel_id=channel.pk)
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)
                continue
            issued.append(
                {"channel": channel, "key": raw, "other": ChannelKey.objects.filter(channel=channel).exclude(pk=key.pk).first()}
            )
        if not issued:
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("New channel keys"),
            "opts": self.model._meta,
            "issued": issued,
        }
        return TemplateResponse(request, "admin/orders/channel/new_keys.html", context)

    def has_delete_permission(self, request, obj=None):
        return False
