"""Reads for the finance screens and exports: payouts, batches and the daily reconciliation."""

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, DecimalField, Max, Min, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from orders.models import MONEY
from refunds.models import (
    Payout,
    PayoutBatch,
    ReconciliationDifference,
    ReconciliationRun,
    RefundMethod,
    RefundRequest,
    sources_of,
)

CENT = Decimal("0.01")
ZERO_MONEY = Value(0, output_field=DecimalField(**MONEY))


PAYOUT_EXPORT_RELATED = ["request__order", "request__customer", "request__channel", "approved_by"]


def payout_queue() -> QuerySet[Payout]:
    """What a row of the finance queue shows: the payout, its request's customer, the first approver."""
    return Payout.objects.select_related("request__customer", "first_approved_by")


# Only the columns an export line reads: the requests' JSON fields (evidence, rule trace)
# would otherwise be fetched and decoded for every row.
PAYOUT_EXPORT_ONLY = [
    "id",
    "request",
    "method",
    "amount",
    "currency",
    "state",
    "approved_by",
    "approved_at",
    "succeeded_at",
    "gateway_reference",
    "request__id",
    "request__order",
    "request__channel",
    "request__customer",
    "request__order__number",
    "request__channel__name",
    "request__customer__name",
    "approved_by__username",
]
REFUND_EXPORT_ONLY = [
    "id",
    "order",
    "channel",
    "customer",
    "approved_by",
    "reason",
    "kind",
    "refund_method",
    "amount_requested",
    "amount_approved",
    "amount_paid",
    "currency",
    "state",
    "approved_at",
    "refunded_at",
    "created_at",
    "order__number",
    "channel__name",
    "customer__name",
    "approved_by__username",
]


def payout_list() -> QuerySet[Payout]:
    """Payouts with everything an export line shows, in one query."""
    return Payout.objects.select_related(*PAYOUT_EXPORT_RELATED).only(*PAYOUT_EXPORT_ONLY)


def refund_export_list() -> QuerySet[RefundRequest]:
    return RefundRequest.objects.select_related("order", "customer", "channel", "approved_by").only(*REFUND_EXPORT_ONLY)


def payout_batch_list() -> QuerySet[PayoutBatch]:
    """Batches with their size and total.

    Correlated subqueries rather than a GROUP BY over every payout: only the rows of the
    page being shown get summed, whatever the size of the payout table.
    """
    payouts = Payout.objects.filter(batch=OuterRef("pk")).order_by().values("batch")
    return PayoutBatch.objects.select_related("created_by").annotate(
        payout_count=Subquery(payouts.annotate(n=Count("pk")).values("n")),
        payout_total=Coalesce(
            Subquery(payouts.annotate(s=Sum("amount")).values("s")), ZERO_MONEY, output_field=DecimalField(**MONEY)
        ),
        # The sum is one money amount only if the batch is of one currency: first and last say.
        payout_currency=Subquery(payouts.annotate(c=Min("currency")).values("c")),
        payout_currency_last=Subquery(payouts.annotate(c=Max("currency")).values("c")),
    )


def day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00, end+1 00:00) in the desk's time zone, so a day means a local day."""
    tz = timezone.get_current_timezone()
    return (
        datetime.combine(start, time.min, tzinfo=tz),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=tz),
    )


def reconciliation_by_day(*, start: date, end: date) -> list[dict]:
    """Succeeded payouts per local day, method and currency: how many and how much.

    Uses the (state, succeeded_at) index; one GROUP BY query whatever the range.
    """
    lo, hi = day_bounds(start, end)
    rows = list(
        Payout.objects.filter(state=Payout.State.SUCCEEDED, succeeded_at__gte=lo, succeeded_at__lt=hi)
        .annotate(day=TruncDate("succeeded_at"))
        .values("day", "method", "currency")
        .annotate(count=Count("id"), total=Sum("amount"))
        .order_by("day", "method", "currency")
    )
    for r in rows:
        # SQLite sums decimals as floats; PostgreSQL's numeric is exact. Quantize either way.
        r["total"] = Decimal(str(r["total"])).quantize(CENT)
        r["method_label"] = RefundMethod(r["method"]).label if r["method"] in RefundMethod.values else r["method"]
    return rows


def reconciliation_runs_by_day(*, start: date, end: date) -> dict[date, ReconciliationRun]:
    """The latest check against the gateway's books of each day in the range."""
    latest: dict[date, ReconciliationRun] = {}
    for run in (
        ReconciliationRun.objects.filter(day__gte=start, day__lte=end)
        .select_related("requested_by")
        .order_by("day", "started_at", "pk")
    ):
        latest[run.day] = run
    return latest


def open_differences():
    """Differences with the gateway's books nobody has resolved yet, oldest day first."""
    return (
        ReconciliationDifference.objects.filter(resolved_at__isnull=True).select_related("payout__request").order_by("day", "pk")
    )


# --- what an approval would do (the confirmation page) --------------------------------------

# What approving a payout does, for one finance user; `payout_approve_bulk` decides with the
# same function, so the confirmation page can't promise what the approval then doesn't do.
APPROVE = "approve"  # approved now: money moves
FIRST_APPROVAL = "first_approval"  # above the four-eyes limit: a second approver must follow
APPROVED_FIRST = "approved_first"  # this user gave the first approval: someone else must
OWN_REQUEST = "own_request"  # this user approved the refund request itself
NOT_PENDING = "not_pending"
OUTCOMES = [APPROVE, FIRST_APPROVAL, APPROVED_FIRST, OWN_REQUEST, NOT_PENDING]

APPROVAL_COLUMNS = [
    "pk",
    "state",
    "amount",
    "currency",
    "method",
    "first_approved_by_id",
    "request_id",
    "request__approved_by_id",
    "request__first_approved_by_id",
]


def approval_outcome(row: dict, *, user_id: int, limit: Decimal) -> str:
    """One of OUTCOMES for a payout row (`APPROVAL_COLUMNS`) approved by `user_id`."""
    if row["state"] not in sources_of(Payout.approve):
        return NOT_PENDING
    if user_id in (row["request__approved_by_id"], row["request__first_approved_by_id"]):
        return OWN_REQUEST
    if row["amount"] > limit and row["first_approved_by_id"] is None:
        return FIRST_APPROVAL
    if row["amount"] > limit and row["first_approved_by_id"] == user_id:
        return APPROVED_FIRST
    return APPROVE


@dataclass
class Totals:
    """How many payouts and how much, per currency and per (method, currency)."""

    count: int = 0
    per_currency: dict = field(default_factory=dict)
    per_method: dict = field(default_factory=dict)
    numbers: list = field(default_factory=list)

    def add(self, row: dict) -> None:
        self.count += 1
        cur, method = row["currency"], row["method"]
        self.per_currency[cur] = self.per_currency.get(cur, Decimal("0.00")) + row["amount"]
        key = (method, cur)
        n, total = self.per_method.get(key, (0, Decimal("0.00")))
        self.per_method[key] = (n + 1, total + row["amount"])
        if len(self.numbers) < 20:
            self.numbers.append(f"PO-{row['pk']:06d}")

    def currency_rows(self) -> list[tuple[str, Decimal]]:
        return sorted(self.per_currency.items())

    def method_rows(self) -> list[dict]:
        return [
            {
                "method": method,
                "label": RefundMethod(method).label if method in RefundMethod.values else method,
                "currency": cur,
                "count": n,
                "total": total,
            }
            for (method, cur), (n, total) in sorted(self.per_method.items())
        ]


@dataclass
class ApprovalPreview:
    """What approving `payout_ids` as one user would do, before anything is done."""

    selected: Totals
    outcomes: dict[str, Totals]
    limit: Decimal
    digest: str
    missing: int = 0

    @property
    def moves_money(self) -> bool:
        return bool(self.outcomes[APPROVE].count or self.outcomes[FIRST_APPROVAL].count)


def payout_approval_preview(*, payout_ids: list[int], user_id: int, limit: Decimal) -> ApprovalPreview:
    """One query over the selected payouts: the totals and each row's outcome.

    `digest` fingerprints what was shown (each row's id, state, amount and approvers): the
    confirmation carries it, and a changed selection is shown again rather than approved.
    """
    ids = sorted(set(int(i) for i in payout_ids))
    rows = list(Payout.objects.filter(pk__in=ids).order_by("pk").values(*APPROVAL_COLUMNS))
    selected, outcomes = Totals(), {o: Totals() for o in OUTCOMES}
    h = hashlib.sha256(f"{user_id}|{limit}".encode())
    for r in rows:
        selected.add(r)
        outcome = approval_outcome(r, user_id=user_id, limit=limit)
        outcomes[outcome].add(r)
        h.update(f"|{r['pk']}:{r['state']}:{r['amount']}:{r['currency']}:{r['method']}:{r['first_approved_by_id']}".encode())
    return ApprovalPreview(selected=selected, outcomes=outcomes, limit=limit, digest=h.hexdigest(), missing=len(ids) - len(rows))
