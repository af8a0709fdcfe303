"""The staff search: requests, orders, customers and parcels that a typed term names.

A term is tried as everything it could be — a request number (RF-000232), an order number
with or without its zero padding, a customer's name, id, phone (whole for who sees phones,
the last four digits for the masked roles) or e-mail, a tracking number, a return code — in
every state, each row ranked 0 (exact), 1 (padding, last four digits) or 2 (part of a name,
or found through its customer). Each kind is read only for a viewer who may view it, and
in a fixed number of queries whatever the term finds: one per kind, plus one to load the
requests and one to load the orders the ranked ids name.
"""

import re
from dataclasses import dataclass

from django.db.models import Q, Value

from orders import selectors as order_selectors
from orders.masking import can_see_customers
from refunds.models import RefundRequest, ReturnParcel

_REQUEST_NUMBER = re.compile(r"(?i)RF-?0*(\d{1,18})")

REQUEST, ORDER, CUSTOMER, PARCEL = "request", "order", "customer", "parcel"
KINDS = [REQUEST, ORDER, CUSTOMER, PARCEL]


@dataclass(frozen=True)
class Hit:
    kind: str
    rank: int
    obj: object


def request_number_id(term: str) -> int | None:
    """'RF-000232', 'rf232' → 232; anything else → None."""
    match = _REQUEST_NUMBER.fullmatch(term.strip())
    return int(match.group(1)) if match else None


def request_ids_matching(term: str, *, user, limit: int = 200) -> list[tuple[int, int]]:
    """(request id, rank) for the requests `term` names, in any state, best first, in one
    query: its number, its order's number (padded or not), its return parcel's code or
    tracking number (rank 0 or 1), or its customer (2)."""
    term = term.strip()
    if not term:
        return []
    requests = RefundRequest.objects
    numbers = order_selectors.order_number_candidates(term)
    padded = [n for n in numbers if n != term]
    parcels = ReturnParcel.objects.filter(Q(return_code=term) | Q(tracking_number=term)).values("request_id")
    branches = [
        requests.filter(order_id__in=order_selectors.Order.objects.filter(number=term).values("pk")).annotate(rank=Value(0)),
        requests.filter(pk__in=parcels).annotate(rank=Value(0)),
    ]
    if (pk := request_number_id(term)) is not None:
        branches.append(requests.filter(pk=pk).annotate(rank=Value(0)))
    if padded:
        branches.append(
            requests.filter(order_id__in=order_selectors.Order.objects.filter(number__in=padded).values("pk")).annotate(
                rank=Value(1)
            )
        )
    if can_see_customers(user):
        customers = order_selectors.customer_ids_matching(term, user=user)
        branches.append(requests.filter(customer_id__in=customers).annotate(rank=Value(2)))
    return order_selectors.ranked_ids(branches, limit=limit)


def parcels_matching(term: str, *, limit: int = order_selectors.SEARCH_LIMIT):
    """Return parcels by return code, tracking number or their request's number (rank 0)."""
    term = term.strip()
    condition = Q(return_code=term) | Q(tracking_number=term)
    if (pk := request_number_id(term)) is not None:
        condition |= Q(request_id=pk)
    return ReturnParcel.objects.filter(condition).select_related("request").order_by("-pk")[:limit]


def staff_search(term: str, *, user, limit: int = order_selectors.SEARCH_LIMIT) -> list[Hit]:
    """Everything `term` names that `user` may view, exact matches first, then by kind
    (requests, orders, customers, parcels) and newest first."""
    term = term.strip()[:100]
    if not term:
        return []
    hits: list[Hit] = []
    if user.has_perm("refunds.view_refundrequest"):
        ranked = request_ids_matching(term, user=user, limit=limit)
        rows = (
            RefundRequest.objects.select_related("channel", "order", "customer").in_bulk([pk for pk, _ in ranked])
            if ranked
            else {}
        )
        hits += [Hit(REQUEST, rank, rows[pk]) for pk, rank in ranked if pk in rows]
    if user.has_perm("orders.view_order"):
        ranked = order_selectors.order_ids_matching(term, user=user, limit=limit)
        rows = order_selectors.orders_by_ids(pk for pk, _ in ranked) if ranked else {}
        hits += [Hit(ORDER, rank, rows[pk]) for pk, rank in ranked if pk in rows]
    if user.has_perm("orders.view_customer"):
        hits += [Hit(CUSTOMER, c.rank, c) for c in order_selectors.customers_matching(term, user=user, limit=limit)]
    if user.has_perm("refunds.view_returnparcel"):
        hits += [Hit(PARCEL, 0, p) for p in parcels_matching(term, limit=limit)]
    return sorted(hits, key=lambda h: (h.rank, KINDS.index(h.kind), -h.obj.pk))
