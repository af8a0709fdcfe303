"""The policy rules engine: each rule of the spec table, its switch, and the strictest outcome."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import translation

from refunds import rules
from refunds.models import Reason, RefundPolicy, RefundRequest
from tests.factories import ChannelFactory, OrderFactory, RefundRequestFactory

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def facts(**overrides) -> rules.Facts:
    base = rules.Facts(
        amount=Decimal("59.90"),
        reason="size_fit",
        kind=RefundRequest.Kind.RETURN_AND_REFUND,
        order_state="delivered",
        paid_total=Decimal("59.90"),
        refunded_total=Decimal("0.00"),
        delivered_at=NOW - timedelta(days=5),
        shipped_at=NOW - timedelta(days=7),
        carrier_shows_delivered=True,
        parcel_moving=False,
        other_refunds_on_order=0,
        risk_score=0,
        watchlisted=False,
        now=NOW,
    )
    return replace(base, **overrides)


def policy(**overrides) -> RefundPolicy:
    return RefundPolicy(name="test", **overrides)


def outcome_of(decision, rule):
    return next(s for s in decision.trace if s["rule"] == rule)


def test_a_clean_request_passes_and_every_enabled_rule_leaves_a_sentence():
    d = rules.evaluate(facts(), policy())
    assert d.outcome == rules.PASS and d.alternative is None and not d.requires_second_review
    assert [s["rule"] for s in d.trace] == [
        "order_paid",
        "return_window",
        "dispute_reason",
        "auto_approve_limit",
        "risk_score",
        "watchlist",
        "refunds_per_order",
    ]
    assert all(s["outcome"] == rules.PASS and s["sentence"] for s in d.trace)


@pytest.mark.parametrize(
    ("change", "rule", "outcome", "sentence"),
    [
        (
            {"order_state": "pending_payment", "paid_total": Decimal("0")},
            "order_paid",
            rules.REJECT,
            "the order has not been paid",
        ),
        ({"refunded_total": Decimal("59.90")}, "order_paid", rules.REJECT, "the order has already been fully refunded"),
        ({"delivered_at": NOW - timedelta(days=41)}, "return_window", rules.REJECT, "delivered 41 days ago; window is 30"),
        (
            {"delivered_at": None, "shipped_at": NOW - timedelta(days=31)},
            "return_window",
            rules.REJECT,
            "shipped 31 days ago; window is 30",
        ),
        ({"reason": "not_as_described"}, "dispute_reason", rules.ESCALATE, "'Not as described' is a dispute reason"),
        ({"amount": Decimal("200.01")}, "auto_approve_limit", rules.ESCALATE, "200.01 is above the auto-approve limit 200.00"),
        (
            {"reason": "not_received"},
            "not_received_but_delivered",
            rules.ESCALATE,
            "claimed not received, but the carrier shows it delivered",
        ),
        (
            {"reason": "shipping_delay", "parcel_moving": True, "delivered_at": None, "carrier_shows_delivered": False},
            "shipping_delay_expedite",
            rules.OFFER,
            "the parcel is still moving: offer to expedite it instead",
        ),
        ({"risk_score": 71}, "risk_score", rules.ESCALATE, "risk score 71 is above the threshold 70"),
        ({"watchlisted": True}, "watchlist", rules.ESCALATE, "the customer is on the watch list: two reviewers needed"),
        (
            {"other_refunds_on_order": 2},
            "refunds_per_order",
            rules.ESCALATE,
            "2 other refund requests on this order already; limit is 2",
        ),
    ],
)
def test_each_rule_fires_with_its_sentence(change, rule, outcome, sentence):
    d = rules.evaluate(facts(**change), policy())
    step = outcome_of(d, rule)
    assert (step["outcome"], step["sentence"]) == (outcome, sentence)
    assert d.outcome == outcome


@pytest.mark.parametrize(
    ("change", "switch"),
    [
        ({"order_state": "pending_payment", "paid_total": Decimal("0")}, "require_paid_enabled"),
        ({"delivered_at": NOW - timedelta(days=41)}, "return_window_enabled"),
        ({"reason": "not_as_described"}, "dispute_reasons_enabled"),
        ({"amount": Decimal("500.00")}, "auto_approve_limit_enabled"),
        ({"reason": "not_received"}, "not_received_check_enabled"),
        ({"reason": "shipping_delay", "parcel_moving": True}, "shipping_delay_alternative_enabled"),
        ({"risk_score": 99}, "risk_threshold_enabled"),
        ({"watchlisted": True}, "watchlist_enabled"),
        ({"other_refunds_on_order": 5}, "max_refunds_per_order_enabled"),
    ],
)
def test_a_rule_switched_off_does_not_fire(change, switch):
    assert rules.evaluate(facts(**change), policy()).outcome != rules.PASS
    d = rules.evaluate(facts(**change), policy(**{switch: False}))
    assert d.outcome == rules.PASS


def test_settings_move_the_thresholds():
    p = policy(return_window_days=45, auto_approve_limit=Decimal("1000.00"), risk_threshold=90, max_refunds_per_order=5)
    f = facts(delivered_at=NOW - timedelta(days=41), amount=Decimal("500.00"), risk_score=80, other_refunds_on_order=3)
    assert rules.evaluate(f, p).outcome == rules.PASS
    custom = policy(dispute_reasons=["damaged"])
    assert rules.evaluate(facts(reason="damaged"), custom).outcome == rules.ESCALATE
    assert rules.evaluate(facts(reason="not_as_described"), custom).outcome == rules.PASS


def test_strictest_outcome_wins_and_an_offer_loses_to_an_escalation():
    f = facts(reason="shipping_delay", parcel_moving=True, delivered_at=None, amount=Decimal("300.00"))
    d = rules.evaluate(f, policy())
    assert d.outcome == rules.ESCALATE and d.alternative is None
    f = facts(reason="not_as_described", delivered_at=NOW - timedelta(days=60))
    d = rules.evaluate(f, policy())
    assert d.outcome == rules.REJECT
    assert d.sentences(rules.REJECT) == "delivered 60 days ago; window is 30"
    assert d.sentences(rules.ESCALATE) == "'Not as described' is a dispute reason"


def test_the_trace_is_english_whatever_language_the_caller_is_in():
    with translation.override("zh-hans"):
        assert str(Reason.NOT_AS_DESCRIBED.label) != "Not as described"  # the catalogue is there
        d = rules.evaluate(facts(reason="not_as_described"), policy())
        trace = [step["sentence"] for step in d.trace]
    assert "'Not as described' is a dispute reason" in trace
    assert translation.get_language() != "zh-hans"  # override restored the caller's language


def test_offer_carries_the_expedite_alternative():
    d = rules.evaluate(facts(reason="shipping_delay", parcel_moving=True, delivered_at=None), policy())
    assert d.outcome == rules.OFFER
    assert d.alternative["kind"] == "expedite" and d.alternative["description"]


def test_keep_it_makes_a_small_return_refund_only_but_not_a_larger_one():
    small = rules.evaluate(facts(amount=Decimal("19.99")), policy())
    assert small.kind == RefundRequest.Kind.REFUND_ONLY and small.outcome == rules.PASS
    assert outcome_of(small, "keep_it")["sentence"] == "19.99 is below 20.00: no return needed"
    assert rules.evaluate(facts(amount=Decimal("20.00")), policy()).kind == RefundRequest.Kind.RETURN_AND_REFUND
    assert (
        rules.evaluate(facts(amount=Decimal("5.00")), policy(keep_it_enabled=False)).kind == RefundRequest.Kind.RETURN_AND_REFUND
    )


def test_watchlist_needs_two_reviewers():
    assert rules.evaluate(facts(watchlisted=True), policy()).requires_second_review


@pytest.mark.django_db
def test_policy_for_prefers_the_channels_own_and_falls_back_to_the_default():
    shop, other = ChannelFactory(name="a"), ChannelFactory(name="b")
    default = rules.policy_for(other)
    assert default.channel is None and default.dispute_reasons == ["not_as_described", "used_goods", "quality_issue"]
    own = RefundPolicy.objects.create(channel=shop, name="shop policy", return_window_days=7)
    assert rules.policy_for(shop) == own
    assert rules.policy_for(other) == default
    assert RefundPolicy.objects.filter(channel__isnull=True).count() == 1


@pytest.mark.django_db
def test_gather_facts_reads_the_order_shipments_and_other_requests():
    order = OrderFactory(lines=[("SKU-1", 2, "10.00")])
    first = RefundRequestFactory(order=order, state=RefundRequest.State.UNDER_REVIEW)
    RefundRequestFactory(order=order, state=RefundRequest.State.WITHDRAWN)
    refund = RefundRequestFactory(order=order)
    f = rules.gather_facts(refund, risk_score=12, watchlisted=False)
    assert f.other_refunds_on_order == 1, f"only {first} counts; withdrawn ones don't"
    assert f.carrier_shows_delivered and not f.parcel_moving
    assert f.delivered_at == order.delivered_at and f.risk_score == 12


@pytest.mark.django_db
def test_gather_facts_sees_a_parcel_still_moving():
    order = OrderFactory(state="shipped", delivered_at=None, lines=[("SKU-1", 1, "10.00")])
    f = rules.gather_facts(RefundRequestFactory(order=order), risk_score=0, watchlisted=False)
    assert f.parcel_moving and not f.carrier_shows_delivered and f.delivered_at is None
