"""Reads for risk screens: the policy dry run and the abuse report."""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, TruncWeek
from django.utils import timezone

from refunds import rules
from refunds.models import RefundPolicy, RefundRequest
from risk.models import WatchlistEntry

OUTCOMES = [rules.PASS, rules.OFFER, rules.ESCALATE, rules.REJECT]
OUTCOME_LABELS = {rules.PASS: "approve", rules.OFFER: "offer", rules.ESCALATE: "escalate", rules.REJECT: "reject"}
ZERO = Decimal("0.00")
NOT_COUNTED = [RefundRequest.State.WITHDRAWN, RefundRequest.State.REJECTED, RefundRequest.State.CANCELLED]


# --- policy dry run ----------------------------------------------------------------------------


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
    listed_then = WatchlistEntry.objects.filter(
        Q(removed_at__isnull=True) | Q(removed_at__gt=OuterRef("created_at")),
        Q(expires_at__isnull=True) | Q(expires_at__gt=OuterRef("created_at")),
        customer_id=OuterRef("customer_id"),
        added_at__lte=OuterRef("created_at"),
    )
    qs = (
        requests_under_policy(proposed, now - timedelta(days=days))
        .select_related("order")
        .prefetch_related("order__shipments")
        .annotate(others=Coalesce(Subquery(others, output_field=IntegerField()), Value(0)), listed=Exists(listed_then))
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
        before = _outcome(rules.evaluate(facts, live), refund.listed)
        after = _outcome(rules.evaluate(facts, proposed), refund.listed)
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


def _outcome(decision, watchlisted: bool) -> str:
    # The same override as refund_evaluate: a listed customer is never approved automatically.
    if watchlisted and decision.outcome in (rules.PASS, rules.OFFER):
        return rules.ESCALATE
    return decision.outcome


# --- the abuse report ---------------------------------------------------------------------------


@dataclass
class Report:
    threshold: int
    weeks: list[dict]
    channels: list[dict]
    escalations: list[tuple[str, int]]
    signals: list[tuple[str, int]]
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None


def _rate_rows(qs, key: str) -> list[dict]:
    rows = []
    for r in qs:
        decided = r["decided"]
        rows.append(
            {"key": r[key], "decided": decided, "abusive": r["abusive"], "rate": r["abusive"] / decided if decided else 0}
        )
    return rows


def abuse_report(*, weeks: int = 12, now=None) -> Report:
    """Abusive rate (abusive / decided verdicts) per week and channel, what escalated, and the
    score's precision and recall at the default policy's threshold. Five queries."""
    now = now or timezone.now()
    since = now - timedelta(weeks=weeks)
    with_verdict = RefundRequest.objects.filter(created_at__gte=since).exclude(verdict="")
    counts = {"decided": Count("pk"), "abusive": Count("pk", filter=Q(verdict=RefundRequest.Verdict.ABUSIVE))}
    by_week = _rate_rows(
        with_verdict.annotate(week=TruncWeek("created_at")).values("week").annotate(**counts).order_by("week"), "week"
    )
    by_channel = _rate_rows(with_verdict.values("channel__name").annotate(**counts).order_by("channel__name"), "channel__name")

    threshold = rules.policy_for(None).risk_threshold
    escalations: Counter = Counter()
    signals: Counter = Counter()
    escalated = RefundRequest.objects.filter(created_at__gte=since).exclude(escalation_reason="")
    for trace, risk_signals in escalated.values_list("rule_trace", "risk_signals").iterator(chunk_size=2000):
        for step in trace or []:
            if step.get("outcome") == rules.ESCALATE:
                escalations[step.get("rule", "?")] += 1
        for signal in risk_signals or []:
            signals[signal.get("code", "?") if isinstance(signal, dict) else str(signal)] += 1

    confusion = defaultdict(int)
    for verdict, score in with_verdict.values_list("verdict", "risk_score").iterator(chunk_size=2000):
        positive, predicted = verdict == RefundRequest.Verdict.ABUSIVE, (score or 0) > threshold
        confusion[(positive, predicted)] += 1
    return Report(
        threshold=threshold,
        weeks=by_week,
        channels=by_channel,
        escalations=escalations.most_common(),
        signals=signals.most_common(),
        tp=confusion[(True, True)],
        fp=confusion[(False, True)],
        fn=confusion[(True, False)],
        tn=confusion[(False, False)],
    )
