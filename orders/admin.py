"""Read-mostly admin for orders, customers and channels, masked per role (orders/masking.py).

Orders arrive from the channels; staff read them here and never retype them. Channel keys
are never shown, only their prefix.
"""

from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from config.admin_kit import LargeTableAdmin, ReadOnlyAdminMixin
from config.errors import DomainError
from orders import services
from orders.masking import email_for, phone_for, reference_for
from orders.models import Channel, ChannelKey, Customer, Order, OrderLine


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


def _viewer(obj):
    return getattr(obj, "_viewer", None)


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    fields = ["sku", "name", "quantity", "unit_price", "line_total", "refunded_quantity", "held_quantity"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Order)
class OrderAdmin(ReadOnlyAdminMixin, LargeTableAdmin, ViewerMixin, admin.ModelAdmin):
    list_display = ["number", "channel", "customer_name", "state", "paid_total", "refunded_total", "placed_at"]
    list_filter = ["channel", "state"]
    list_select_related = ["channel", "customer"]
    search_fields = ["number"]
    search_help_text = _("An order number (exact).")
    ordering = ["-id"]
    fields = [
        "number",
        "channel",
        "customer_name",
        "customer_phone",
        "state",
        "currency",
        "placed_at",
        "paid_total",
        "refunded_total",
        "held_total",
        "payment_details",
        "shipping_fee",
        "delivered_at",
        "refund_requests_list",
    ]
    readonly_fields = fields
    inlines = [OrderLineInline]

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
            "{} · {} · {} {}",
            (
                (
                    format_html('<a href="{}">{}</a>', reverse("admin:refunds_refundrequest_change", args=[r.pk]), r.number)
                    if can_open
                    else r.number,
                    r.get_state_display(),
                    r.amount_requested,
                    r.currency,
                )
                for r in rows
            ),
        )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        return (queryset.filter(number=term) if term else queryset), False

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
        return f"{payment.method} · {reference_for(_viewer(obj), payment.reference)} · {payment.amount}"


@admin.register(Customer)
class CustomerAdmin(ReadOnlyAdminMixin, LargeTableAdmin, ViewerMixin, admin.ModelAdmin):
    list_display = ["display_name", "channel", "external_id", "masked_phone", "masked_email", "created_at"]
    list_filter = ["channel"]
    list_select_related = ["channel"]
    search_fields = ["external_id"]
    search_help_text = _("A customer id (exact).")
    ordering = ["-id"]
    fields = ["display_name", "channel", "external_id", "masked_phone", "masked_email", "language", "sms_opt_out", "created_at"]
    readonly_fields = fields

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        return (queryset.filter(external_id=term) if term else queryset), False

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
