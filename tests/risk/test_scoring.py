"""Score, level and the signals a support agent reads."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from risk.models import RiskProfile, RiskSettings
from risk.scoring import level_for, score_profile

pytestmark = pytest.mark.django_db


def profile(**kw) -> RiskProfile:
    return RiskProfile(**kw)


def test_refund_rate_signal_in_words_and_points():
    s = RiskSettings.current()
    a = score_profile(
        profile(orders_90d=8, refunded_orders_90d=7, paid_amount_90d=Decimal("800"), refund_amount_90d=Decimal("700")),
        s,
        timezone.now(),
    )
    assert a.signals == [
        {"code": "refund_rate", "text": "refunded 7 of 8 orders in 90 days (88% of the money paid)", "points": 35}
    ]
    assert (a.score, a.level) == (35, "low")


def test_an_ordinary_refund_rate_adds_nothing():
    s = RiskSettings.current()
    a = score_profile(profile(orders_90d=10, refunded_orders_90d=2, paid_amount_90d=Decimal("1000")), s, timezone.now())
    assert (a.score, a.signals) == (0, [])


def test_several_signals_add_up_capped_at_100_and_keep_the_strongest_three():
    s = RiskSettings.current()
    now = timezone.now()
    p = profile(
        orders_90d=4,
        refunded_orders_90d=4,
        paid_amount_90d=Decimal("400"),
        refund_amount_90d=Decimal("400"),
        bulk_orders=3,
        bulk_orders_mostly_returned=3,
        requests_total=4,
        not_received_requests=4,
        abusive_verdicts=1,
        account_created_at=now - timedelta(days=3),
        first_order_at=now - timedelta(days=3),
        first_refund_at=now - timedelta(days=2, hours=12),
    )
    a = score_profile(p, s, now)
    assert a.score == 100 and a.level == "high"
    assert [x["code"] for x in a.signals] == ["buy_many_refund_most", "confirmed_abuse", "not_received"]
    assert a.signals[1]["text"] == "1 earlier request confirmed abusive"


def test_levels_follow_the_settings():
    s = RiskSettings.current()
    assert [level_for(n, s) for n in (0, 39, 40, 70, 71)] == ["low", "low", "medium", "medium", "high"]


def test_no_profile_is_neutral():
    assert score_profile(None, RiskSettings.current(), timezone.now()).score == 0
