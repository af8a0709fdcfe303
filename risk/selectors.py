"""Reads for risk screens: the abuse report."""

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncWeek
from django.utils import timezone

from refunds import rules
from refunds.models import RefundRequest

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
