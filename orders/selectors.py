"""Reads of orders: shaped for the channel API (a fixed number of queries per call), and the
look-ups behind the staff search."""

import re

from django.db.models import Case, IntegerField, Prefetch, Q, Value, When
from django.db.models.functions import Right

from orders.masking import can_see_customers, may_search_last_four, may_search_masked
from orders.models import Customer, Order, OrderLine, Shipment


def order_for_channel(*, channel, number: str) -> Order | None:
    return (
        Order.objects.filter(channel=channel, number=number)
        .select_related("customer")
        .prefetch_related(
            Prefetch("lines", queryset=OrderLine.objects.order_by("pk")),
            Prefetch("shipments", queryset=Shipment.objects.order_by("pk")),
        )
        .first()
    )


# --- finding orders and customers by what staff type ------------------------------------
# Every look-up below is served by an index (orders/migrations, "search indexes"): exact or
# IN on btree columns, a customer's name by a trigram index on PostgreSQL, the last four
# digits of a phone by an index on that expression. On SQLite the same queries are correct,
# only slower.

SEARCH_LIMIT = 20
# Order numbers are padded by some channels ("00002500") and typed without it ("2500").
_MAX_PADDED = 20
_NUMBERED = re.compile(r"(\D*?)(\d{1,20})")
LAST_FOUR = re.compile(r"\d{4}")
# A phone as typed by someone who sees phones whole: digits, spaces, dashes, a leading +.
_PHONE = re.compile(r"\+?[\d\s-]{7,20}")


def order_number_candidates(term: str) -> list[str]:
    """The order numbers `term` may mean: itself, and when it ends in digits the same number
    with any zero padding up to 20 digits ("2500" → "2500", "02500", …, "00002500", …)."""
    term = term.strip()
    if not term:
        return []
    numbers = {term}
    match = _NUMBERED.fullmatch(term)
    if match:
        prefix, digits = match.groups()
        digits = digits.lstrip("0") or "0"
        numbers |= {prefix + digits.zfill(width) for width in range(len(digits), _MAX_PADDED + 1)}
    return sorted(numbers)


def customer_match(term: str, *, user) -> tuple[Q, Case] | None:
    """The condition on customers that `term` names, and the rank of each match (0 exact,
    1 a prefix or the last four digits of the phone, 2 part of the name), for this viewer:
    phone and e-mail only for who sees them whole, the phone's last four digits also for the
    masked roles (orders.masking), nothing for who may not see customers. None: no match."""
    term = term.strip()
    if not term or not can_see_customers(user):
        return None
    exact = Q(external_id=term)
    # Fewer than three characters make no trigram: only the whole name, then, which the
    # trigram index still serves on PostgreSQL (equality, 14+).
    exact |= Q(name__iexact=term)
    loose = Q(name__icontains=term) if len(term) >= 3 else Q(pk__in=[])
    near = Q(pk__in=[])
    if may_search_masked(user):
        exact |= Q(email__iexact=term)
        if _PHONE.fullmatch(term):
            digits = re.sub(r"[\s-]", "", term)
            exact |= Q(phone__in=sorted({digits, digits if digits.startswith("+") else "+86" + digits}))
    if LAST_FOUR.fullmatch(term) and may_search_last_four(user):
        near |= Q(phone_last4=term)
    rank = Case(When(exact, then=Value(0)), When(near, then=Value(1)), default=Value(2), output_field=IntegerField())
    return exact | near | loose, rank


def customers_matching(term: str, *, user, limit: int = SEARCH_LIMIT):
    """Customers `term` names, best match first (see `customer_match`), annotated `rank`."""
    match = customer_match(term, user=user)
    if match is None:
        return Customer.objects.none()
    condition, rank = match
    return (
        Customer.objects.annotate(phone_last4=Right("phone", 4))
        .filter(condition)
        .annotate(rank=rank)
        .select_related("channel")
        .order_by("rank", "-pk")[:limit]
    )


def customer_ids_matching(term: str, *, user, limit: int = SEARCH_LIMIT):
    """The ids of `customers_matching`, as a subquery (no query of its own)."""
    match = customer_match(term, user=user)
    if match is None:
        return Customer.objects.none().values("pk")
    condition, _rank = match
    return Customer.objects.annotate(phone_last4=Right("phone", 4)).filter(condition).order_by("-pk").values("pk")[:limit]


def order_ids_matching(term: str, *, user, limit: int = 200) -> list[tuple[int, int]]:
    """(order id, rank) for the orders `term` names, best first, in one query: its number
    (0 exact, 1 with other zero padding), an outbound parcel's tracking number (0), or its
    customer (2)."""
    term = term.strip()
    if not term:
        return []
    numbers = order_number_candidates(term)
    padded = [n for n in numbers if n != term]
    branches = [
        Order.objects.filter(number=term).annotate(rank=Value(0)),
        Order.objects.filter(pk__in=Shipment.objects.filter(tracking_number=term).values("order_id")).annotate(rank=Value(0)),
        Order.objects.filter(customer_id__in=customer_ids_matching(term, user=user)).annotate(rank=Value(2)),
    ]
    if padded:
        branches.append(Order.objects.filter(number__in=padded).annotate(rank=Value(1)))
    return ranked_ids(branches, limit=limit)


def ranked_ids(branches, *, limit: int) -> list[tuple[int, int]]:
    """One UNION ALL of `branches` (querysets annotated `rank`): each id once, at its best rank."""
    first, *rest = [b.values_list("pk", "rank").order_by() for b in branches]
    rows = first.union(*rest, all=True).order_by("rank", "-pk")[: limit * 2] if rest else first.order_by("rank", "-pk")
    best: dict[int, int] = {}
    for pk, rank in rows:
        best.setdefault(pk, rank)
    return sorted(best.items(), key=lambda item: (item[1], -item[0]))[:limit]


def orders_by_ids(ids) -> dict[int, Order]:
    return Order.objects.select_related("channel", "customer").in_bulk(list(ids))
