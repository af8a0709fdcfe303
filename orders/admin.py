"""Read-mostly admin for orders, customers and channels, masked per role (orders/masking.py).

Orders arrive from the channels; staff read them here and never retype them. Channel keys
are never shown, only their prefix.
"""

import re

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Q
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from config.actors import Actor
from config.admin_kit import LargeTableAdmin, ReadOnlyAdminMixin
from config.errors import DomainError
from orders import services_erasure
from orders.masking import email_for, lookup_touches_masked, may_search_last_four, may_search_masked, phone_for, reference_for
from orders.models import Channel, Customer, Order, OrderLine
from orders.services_erasure import PERM_ANONYMIZE


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
    fields = ["sku", "name", "quantity", "unit_price", "line_total", "refunded_quantity", "held_quantity"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Order)
class OrderAdmin(MaskedSearchMixin, ReadOnlyAdminMixin, LargeTableAdmin, ViewerMixin, admin.ModelAdmin):
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
class CustomerAdmin(MaskedSearchMixin, ReadOnlyAdminMixin, LargeTableAdmin, ViewerMixin, admin.ModelAdmin):
    list_display = ["display_name", "channel", "external_id", "masked_phone", "masked_email", "created_at"]
    list_filter = ["channel"]
    list_select_related = ["channel"]
    search_fields = ["external_id"]
    search_help_text = _("A customer id, or for those who see phones a phone number (exact).")
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
        if may_search_masked(request.user):
            return queryset.filter(Q(external_id=term) | Q(phone=term)), False
        return queryset.filter(external_id=term), False

    @admin.display(description=_("name"))
    def display_name(self, obj):
        return obj.name or obj.external_id

    @admin.display(description=_("phone"))
    def masked_phone(self, obj):
        return phone_for(_viewer(obj), obj.phone)

    @admin.display(description=_("email"))
    def masked_email(self, obj):
        return email_for(_viewer(obj), obj.email)


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    # Keys are created by `manage.py create_channel`, which prints the key once.
    list_display = ["name", "kind", "key_prefix", "is_active", "created_at"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name"]
    ordering = ["name"]
    fields = ["name", "kind", "key_prefix", "is_active", "created_at"]
    readonly_fields = ["key_prefix", "created_at"]

    def has_delete_permission(self, request, obj=None):
        return False
