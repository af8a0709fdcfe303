"""The staff search page, linked from every staff page's header: one box that finds
requests, orders, customers and parcels (refunds.selectors_search), each row a link to its
admin page, personal data masked as the viewer's role sees it."""

from dataclasses import dataclass

from django.contrib import admin
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from orders.masking import email_for, phone_for
from refunds import selectors_search as search

KIND_LABELS = {
    search.REQUEST: _("Refund request"),
    search.ORDER: _("Order"),
    search.CUSTOMER: _("Customer"),
    search.PARCEL: _("Return parcel"),
}
RANK_LABELS = {0: _("exact"), 1: _("close"), 2: _("related")}


@dataclass
class Row:
    kind: str
    match: str
    title: str
    detail: str
    url: str


def _row(hit, user) -> Row:
    obj = hit.obj
    if hit.kind == search.REQUEST:
        title, url = obj.number, reverse("admin:refunds_refundrequest_change", args=[obj.pk])
        detail = f"{obj.get_state_display()} · {obj.order.number} · {obj.customer.name or obj.customer.external_id}"
    elif hit.kind == search.ORDER:
        title, url = obj.number, reverse("admin:orders_order_change", args=[obj.pk])
        detail = f"{obj.get_state_display()} · {obj.channel.name} · {obj.customer.name or obj.customer.external_id}"
    elif hit.kind == search.CUSTOMER:
        title, url = obj.name or obj.external_id, reverse("admin:orders_customer_change", args=[obj.pk])
        parts = [obj.channel.name, obj.external_id, phone_for(user, obj.phone), email_for(user, obj.email)]
        detail = " · ".join(p for p in parts if p)
    else:
        title, url = obj.return_code, reverse("admin:refunds_returnparcel_change", args=[obj.pk])
        tracking = f"{obj.carrier} {obj.tracking_number}".strip()
        detail = " · ".join(p for p in [obj.request.number, obj.request.get_state_display(), tracking] if p)
    return Row(kind=str(KIND_LABELS[hit.kind]), match=str(RANK_LABELS[hit.rank]), title=title, detail=detail, url=url)


def search_view(request):
    term = request.GET.get("q", "").strip()
    rows = [_row(hit, request.user) for hit in search.staff_search(term, user=request.user)] if term else []
    context = {
        **admin.site.each_context(request),
        "title": _("Search"),
        "term": term,
        "rows": rows,
    }
    return TemplateResponse(request, "admin/staff_search.html", context)
