"""Risk at intake: the score stored on the request, and the watch list in the decision."""

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from config.actors import Actor
from notifications.models import Notification
from refunds import services as refunds
from refunds.models import RefundRequest
from risk import services
from tests.factories import CustomerFactory, OrderFactory, UserFactory
from tests.risk.helpers import order, request, sent_back

pytestmark = pytest.mark.django_db


def submit(o, key="k1", reason="size_fit"):
    refund, _ = refunds.refund_submit(
        actor=Actor.for_channel(o.channel),
        channel=o.channel,
        idempotency_key=key,
        order_number=o.number,
        kind="return_and_refund",
        reason=reason,
    )
    refund.refresh_from_db()
    return refund


def small_order(customer=None):
    kw = {"customer": customer, "channel": customer.channel} if customer else {}
    return OrderFactory(lines=[("SKU-1", 1, "59.00")], **kw)


def assert_approved_automatically(refund):
    # approval moves on at once to the return step; what matters is who decided
    assert refund.state == RefundRequest.State.AWAITING_RETURN
    assert refund.approved_at is not None and refund.decided_by == "system"


def test_a_watchlisted_customers_small_rule_passing_request_goes_to_review(risk_user, django_capture_on_commit_callbacks):
    o = small_order()
    services.watchlist_add(customer_id=o.customer_id, actor=Actor.for_user(risk_user), note="linked to a known fraud ring")
    with django_capture_on_commit_callbacks(execute=True):
        refund = submit(o)
    refund.refresh_from_db()
    assert refund.state == RefundRequest.State.UNDER_REVIEW
    assert refund.requires_second_review
    assert "watch list" in refund.escalation_reason
    hit = Notification.objects.get(event="watchlist_hit", recipient="risk", refund=refund)
    assert hit.context["reason"] == "Added by hand"
    assert "watch-listed customer" in hit.body


def test_the_same_request_from_an_unlisted_customer_is_approved(django_capture_on_commit_callbacks):
    o = small_order()
    with django_capture_on_commit_callbacks(execute=True):
        refund = submit(o)
    refund.refresh_from_db()
    assert_approved_automatically(refund)
    assert not refund.requires_second_review
    assert (refund.risk_score, refund.risk_level, refund.risk_signals) == (0, "low", [])
    assert not Notification.objects.filter(event__startswith="watchlist").exists()


def test_an_expired_or_removed_entry_no_longer_holds_a_request(risk_user, django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    o = small_order()
    actor = Actor.for_user(risk_user)
    services.watchlist_add(customer_id=o.customer_id, actor=actor, note="x", expires_at=timezone.now() - timedelta(days=1))
    with django_capture_on_commit_callbacks(execute=True):
        refund = submit(o)
    refund.refresh_from_db()
    assert_approved_automatically(refund)


def test_a_serial_returners_score_and_signals_are_stored_on_the_request(django_capture_on_commit_callbacks):
    c = CustomerFactory()
    for _ in range(7):
        o = order(c, units=3, days=20)
        request(o, days=15)
        sent_back(o, 3)
    o = small_order(c)
    with django_capture_on_commit_callbacks(execute=True):
        refund = submit(o)
    refund.refresh_from_db()
    # 8 orders, 8 with a request (this one included); 7 bulk orders all sent back
    assert refund.risk_score == 90 and refund.risk_level == "high"
    assert [s["code"] for s in refund.risk_signals] == ["buy_many_refund_most", "refund_rate"]
    assert refund.risk_signals[1]["text"].startswith("refunded 8 of 8 orders in 90 days")
    assert refund.state == RefundRequest.State.UNDER_REVIEW
    assert "risk score 90 is above the threshold 70" in refund.escalation_reason


def test_scoring_one_request_takes_a_fixed_number_of_queries():
    # the same count without history, with a long one, and for a listed customer
    quiet = CustomerFactory()
    busy = CustomerFactory()
    for _ in range(5):
        request(order(busy), days=3)
    listed = CustomerFactory()
    services.watchlist_add(customer_id=listed.pk, actor=Actor.for_user(UserFactory(role="risk")), note="ring")
    counts = []
    for c in (quiet, busy, listed):
        with CaptureQueriesContext(connection) as ctx:
            services.assess_customer(customer=c)
        counts.append(len(ctx.captured_queries))
    assert counts == [5, 5, 5]


def test_scoring_one_request_is_fast():
    c = CustomerFactory()
    for _ in range(20):
        request(order(c), days=3)
    services.assess_customer(customer=c)
    started = time.perf_counter()
    for _ in range(10):
        services.assess_customer(customer=c)
    assert (time.perf_counter() - started) / 10 < 0.1  # generous for CI; the benchmark records the real figure


def test_customer_changed_recomputes_after_commit(django_capture_on_commit_callbacks):
    from risk.models import RiskProfile

    c = CustomerFactory()
    request(order(c), hours=1)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.customer_changed(customer_id=c.pk)
    assert not RiskProfile.objects.filter(customer=c).exists()  # nothing before commit
    for cb in callbacks:
        cb()
    assert RiskProfile.objects.get(customer=c).requests_24h == 1


def test_an_abusive_verdict_reaches_the_profile_after_commit(django_capture_on_commit_callbacks, support):
    from risk.models import RiskProfile

    c = CustomerFactory()
    refund = request(order(c), state=RefundRequest.State.REJECTED)
    RefundRequest.objects.filter(pk=refund.pk).update(escalation_reason="risk score 90 is above the threshold 70")
    with django_capture_on_commit_callbacks(execute=True):
        refunds.refund_record_verdict(refund_id=refund.pk, actor=support, verdict="abusive")
    assert RiskProfile.objects.get(customer=c).abusive_verdicts == 1
