"""From a profile to a score, a level and the signals that drove it, and to watch-list patterns.

Pure functions of (profile, settings, now): no queries, so scoring a whole population is a
loop over rows already fetched, and a test can check every point.
"""

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.db.models import Q

from risk.models import RiskLevel, RiskProfile, RiskSettings, WatchlistEntry

# A refund rate below this is ordinary; points rise linearly up to the settings' threshold.
ORDINARY_REFUND_RATE = Decimal("0.25")
ORDINARY_REASON_SHARE = Decimal("0.20")
REASON_SHARE_FULL = Decimal("0.60")
NEW_ACCOUNT_DAYS = 30
FAST_FIRST_REFUND_DAYS = 3
MAX_SIGNALS = 3


@dataclass(frozen=True)
class Assessment:
    score: int
    level: str
    # Short dicts {"code", "text", "points"}, strongest first; `text` is for people.
    signals: list = field(default_factory=list)


NEUTRAL = Assessment(score=0, level=RiskLevel.LOW, signals=[])


def _ramp(value: Decimal, low: Decimal, full: Decimal) -> Decimal:
    if full <= low:
        return Decimal(1) if value >= full else Decimal(0)
    return max(Decimal(0), min(Decimal(1), (value - low) / (full - low)))


def _ratio(a, b) -> Decimal:
    return Decimal(a) / Decimal(b) if b else Decimal(0)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def contributions(p: RiskProfile, s: RiskSettings, now) -> list[dict]:
    """Every signal that adds points, with its sentence."""
    out: list[dict] = []

    def add(code: str, weight: int, strength: Decimal, text: str) -> None:
        points = int((Decimal(weight) * strength).to_integral_value())
        if points > 0:
            out.append({"code": code, "text": text, "points": points})

    if p.orders_90d >= s.refund_rate_min_orders:
        by_count = _ratio(min(p.refunded_orders_90d, p.orders_90d), p.orders_90d)
        by_money = _ratio(p.refund_amount_90d, p.paid_amount_90d)
        rate = max(by_count, by_money)
        add(
            "refund_rate",
            s.weight_refund_rate,
            _ramp(rate, ORDINARY_REFUND_RATE, Decimal(s.refund_rate_threshold)),
            f"refunded {min(p.refunded_orders_90d, p.orders_90d)} of {p.orders_90d} orders in {s.rate_window_days} days "
            f"({by_money:.0%} of the money paid)",
        )
    if p.bulk_orders_mostly_returned:
        full = p.bulk_orders_mostly_returned >= s.buy_many_min_orders
        add(
            "buy_many_refund_most",
            s.weight_buy_many_refund_most,
            Decimal(1) if full else Decimal("0.34"),
            f"sent back most of {p.bulk_orders_mostly_returned} of {_plural(p.bulk_orders, 'multi-item order')}",
        )
    if p.distinct_addresses_30d >= s.churn_min_addresses or p.address_changes_30d >= s.churn_min_changes:
        add(
            "address_churn",
            s.weight_address_churn,
            Decimal(1),
            f"{p.distinct_addresses_30d} shipping addresses and {_plural(p.address_changes_30d, 'address change')} "
            f"in {s.churn_window_days} days",
        )
    if p.requests_24h >= s.burst_24h or p.requests_7d >= s.burst_7d:
        add(
            "velocity",
            s.weight_velocity,
            Decimal(1),
            f"{_plural(p.requests_24h, 'refund request')} in 24 hours, {p.requests_7d} in 7 days",
        )
    if p.requests_total >= s.reason_min_requests:
        share = _ratio(p.not_received_requests, p.requests_total)
        add(
            "not_received",
            s.weight_not_received,
            _ramp(share, ORDINARY_REASON_SHARE, REASON_SHARE_FULL),
            f"{p.not_received_requests} of {p.requests_total} requests claim 'not received'",
        )
        share = _ratio(p.dispute_requests, p.requests_total)
        add(
            "dispute_reasons",
            s.weight_dispute,
            _ramp(share, ORDINARY_REASON_SHARE, REASON_SHARE_FULL),
            f"{p.dispute_requests} of {p.requests_total} requests give a dispute reason",
        )
    if (
        p.account_created_at
        and p.first_order_at
        and p.first_refund_at
        and now - p.account_created_at < timedelta(days=NEW_ACCOUNT_DAYS)
        and p.first_refund_at - p.first_order_at < timedelta(days=FAST_FIRST_REFUND_DAYS)
    ):
        days = (now - p.account_created_at).days
        hours = int((p.first_refund_at - p.first_order_at).total_seconds() // 3600)
        add(
            "new_account",
            s.weight_new_account,
            Decimal(1),
            f"account {_plural(days, 'day')} old; first refund {hours} hours after the first order",
        )
    shared = max(p.shared_phone_accounts, p.shared_address_accounts)
    if shared >= s.shared_min_accounts:
        what = "phone" if p.shared_phone_accounts >= p.shared_address_accounts else "an address"
        add("shared_identifiers", s.weight_shared_identifiers, Decimal(1), f"{what} shared with {shared} other accounts")
    if p.abusive_verdicts:
        add(
            "confirmed_abuse",
            s.weight_confirmed_abuse,
            Decimal(1),
            f"{_plural(p.abusive_verdicts, 'earlier request')} confirmed abusive",
        )
    return sorted(out, key=lambda c: -c["points"])


def level_for(score: int, s: RiskSettings) -> str:
    if score > s.high_from:
        return RiskLevel.HIGH
    if score >= s.medium_from:
        return RiskLevel.MEDIUM
    return RiskLevel.LOW


def score_profile(p: RiskProfile | None, s: RiskSettings, now) -> Assessment:
    if p is None:
        return NEUTRAL
    parts = contributions(p, s, now)
    score = min(100, sum(c["points"] for c in parts))
    return Assessment(score=score, level=str(level_for(score, s)), signals=parts[:MAX_SIGNALS])


# --- watch-list patterns -------------------------------------------------------------------

R = WatchlistEntry.Reason


def pattern_q(s: RiskSettings) -> Q:
    """Profiles on which at least one pattern fires (the same tests as `patterns_of`)."""
    return (
        Q(bulk_orders_mostly_returned__gte=s.buy_many_min_orders)
        | Q(distinct_addresses_30d__gte=s.churn_min_addresses)
        | Q(address_changes_30d__gte=s.churn_min_changes)
        | Q(shared_phone_accounts__gte=s.shared_min_accounts)
        | Q(shared_address_accounts__gte=s.shared_min_accounts)
        | Q(requests_24h__gte=s.burst_24h)
    )


def patterns_of(p: RiskProfile, s: RiskSettings) -> list[tuple[str, dict]]:
    """(reason, evidence) for every pattern that fires on `p`."""
    fired = []
    if p.bulk_orders_mostly_returned >= s.buy_many_min_orders:
        fired.append((R.BUY_MANY_REFUND_MOST, {"bulk_orders": p.bulk_orders, "mostly_returned": p.bulk_orders_mostly_returned}))
    if p.distinct_addresses_30d >= s.churn_min_addresses or p.address_changes_30d >= s.churn_min_changes:
        fired.append(
            (
                R.ADDRESS_CHURN,
                {
                    "distinct_addresses": p.distinct_addresses_30d,
                    "address_changes": p.address_changes_30d,
                    "days": s.churn_window_days,
                },
            )
        )
    if max(p.shared_phone_accounts, p.shared_address_accounts) >= s.shared_min_accounts:
        fired.append(
            (
                R.SHARED_IDENTIFIERS,
                {"phone_shared_with": p.shared_phone_accounts, "address_shared_with": p.shared_address_accounts},
            )
        )
    if p.requests_24h >= s.burst_24h:
        fired.append((R.BURST, {"requests_24h": p.requests_24h, "requests_7d": p.requests_7d}))
    return fired
