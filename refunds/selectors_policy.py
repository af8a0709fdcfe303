"""The policy dry run: what a proposed refund policy would have decided on recent requests,
next to the live one, before the risk role saves it (`refunds/admin/policy.py`)."""

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from refunds import rules
from refunds.assessment import risk_assessor
from refunds.models import RefundPolicy, RefundRequest

OUTCOMES = [rules.PASS, rules.OFFER, rules.ESCALATE, rules.REJECT]
OUTCOME_LABELS = {rules.PASS: "approve", rules.OFFER: "offer", rules.ESCALATE: "escalate", rules.REJECT: "reject"}
ZERO = Decimal("0.00")
NOT_COUNTED = [RefundRequest.State.WITHDRAWN, RefundRequest.State.REJECTED, RefundRequest.State.CANCELLED]


@dataclass
class DryRunRow:
    outcome: str
    live_count: int = 0
    live_amount: Decimal = ZERO
    proposed_count: int = 0
    proposed_amount: Decimal = ZERO

    @property
    def label(self) -> str:
        return OUTCOME_LABELS[self.outcome]

    @property
    def count_delta(self) -> int:
        return self.proposed_count - self.live_count

    @property
    def amount_delta(self) -> Decimal:
        return self.proposed_amount - self.live_amount


@dataclass
class DryRun:
    days: int
    requests: int = 0
    rows: list[DryRunRow] = field(default_factory=list)
    changed: list[dict] = field(default_factory=list)
    changed_count: int = 0


def requests_under_policy(policy: RefundPolicy, since):
    """Requests since `since` that `policy` governs (its channel, or every channel without one)."""
    qs = RefundRequest.objects.filter(created_at__gte=since)
    if policy.channel_id:
        return qs.filter(channel_id=policy.channel_id)
    return qs.exclude(channel__policy__isnull=False)


def policy_dry_run(*, live: RefundPolicy, proposed: RefundPolicy, days: int = 30, now=None, examples: int = 20) -> DryRun:
    """What `proposed` would have decided on the last `days` of requests, next to `live`.

    A fixed number of queries whatever the number of requests: orders joined, shipments
    prefetched, and the other-requests count and the watch-list status at the time of each
    request computed as subqueries. `rules.evaluate` is pure and runs once per policy per row.
    """
    now = now or timezone.now()
    others = (
        RefundRequest.objects.filter(order_id=OuterRef("order_id"), created_at__lt=OuterRef("created_at"))
        .exclude(state__in=NOT_COUNTED)
        .order_by()
        .values("order_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    listed_then = risk_assessor().listed_at(customer=OuterRef("customer_id"), at=OuterRef("created_at"))
    qs = (
        requests_under_policy(proposed, now - timedelta(days=days))
        .select_related("order")
        .prefetch_related("order__shipments")
        .annotate(others=Coalesce(Subquery(others, output_field=IntegerField()), Value(0)), listed=listed_then)
        .order_by("created_at")
    )
    rows = {o: DryRunRow(outcome=o) for o in OUTCOMES}
    result = DryRun(days=days)
    for refund in qs:
        facts = rules.gather_facts(
            refund,
            risk_score=refund.risk_score or 0,
            watchlisted=refund.listed,
            now=refund.created_at,
            other_refunds_on_order=refund.others,
        )
        before = rules.decide(facts, live).outcome
        after = rules.decide(facts, proposed).outcome
        rows[before].live_count += 1
        rows[before].live_amount += refund.amount_requested
        rows[after].proposed_count += 1
        rows[after].proposed_amount += refund.amount_requested
        result.requests += 1
        if before != after:
            result.changed_count += 1
            if len(result.changed) < examples:
                result.changed.append(
                    {
                        "number": refund.number,
                        "amount": refund.amount_requested,
                        "live": OUTCOME_LABELS[before],
                        "proposed": OUTCOME_LABELS[after],
                    }
                )
    result.rows = [rows[o] for o in OUTCOMES]
    return result
