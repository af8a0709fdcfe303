"""Money: what the database itself refuses, partial refunds, rounding, wallet and coupons."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from config.actors import SYSTEM, Actor
from orders.models import Order, OrderLine
from refunds import services
from refunds.errors import RefundValidationError
from refunds.models import Coupon, Payout, RefundRequest, WalletEntry
from refunds.services import LineRequest, payouts
from tests.factories import OrderFactory
from tests.refunds import journeys

pytestmark = pytest.mark.django_db
D = Decimal


def _violates(qs, **update):
    with pytest.raises(IntegrityError), transaction.atomic():
        qs.update(**update)


# --- the database holds refunded + held ≤ paid ------------------------------------------------


def test_the_database_refuses_a_line_refunded_beyond_what_was_bought():
    order = OrderFactory(lines=[("SKU-1", 2, "10.00")])
    line = OrderLine.objects.filter(order=order)

    _violates(line, refunded_quantity=3)
    _violates(line, refunded_amount=D("20.01"))
    # Held units count as taken: refunded + held beyond the line is refused too.
    _violates(line, held_quantity=1, refunded_quantity=2)
    _violates(line, held_amount=D("10.00"), refunded_amount=D("10.01"))
    _violates(line, held_amount=D("-0.01"))

    assert list(line.values_list("refunded_quantity", "refunded_amount", "held_quantity", "held_amount")) == [
        (0, D("0.00"), 0, D("0.00"))
    ]
    line.update(held_quantity=1, held_amount=D("10.00"), refunded_quantity=1, refunded_amount=D("10.00"))  # exactly full


def test_the_database_refuses_an_order_refunded_beyond_what_was_paid():
    order = OrderFactory(lines=[("SKU-1", 1, "30.00")])
    qs = Order.objects.filter(pk=order.pk)

    _violates(qs, refunded_total=F("paid_total") + D("0.01"))
    _violates(qs, held_total=D("20.00"), refunded_total=D("10.01"))
    _violates(qs, refunded_total=D("-1.00"))

    order.refresh_from_db()
    assert (order.refunded_total, order.held_total) == (D("0.00"), D("0.00"))
    qs.update(held_total=D("20.00"), refunded_total=D("10.00"))  # exactly paid is fine


# --- partial refunds and rounding -------------------------------------------------------------


def test_partial_refunds_hold_what_they_ask_per_line_and_per_order():
    order = OrderFactory(lines=[("A", 3, "10.00"), ("B", 1, "50.00")])

    first = journeys.submit(order, lines=[LineRequest("A", 1)])
    second = journeys.submit(order, lines=[LineRequest("A", 2), LineRequest("B", 1)])

    assert RefundRequest.objects.get(pk=first).amount_requested == D("10.00")
    assert RefundRequest.objects.get(pk=second).amount_requested == D("70.00")
    order.refresh_from_db()
    assert order.held_total == D("80.00")
    assert order.refundable_total == D("0.00")
    assert dict(order.lines.values_list("sku", "held_quantity")) == {"A": 3, "B": 1}
    with pytest.raises(RefundValidationError, match="only 0 left"):
        journeys.submit(order, lines=[LineRequest("A", 1)])
    assert RefundRequest.objects.filter(order=order).count() == 2


def _discounted_order():
    """3 units of 10.00 sold for 29.99 together: a third is not a whole number of cents."""
    order = OrderFactory(lines=[("SKU-D", 3, "10.00")])
    OrderLine.objects.filter(order=order).update(line_total=D("29.99"))
    Order.objects.filter(pk=order.pk).update(paid_total=D("29.99"))
    order.payment.__class__.objects.filter(order=order).update(amount=D("29.99"))
    return order


def _pay(refund_id, finance):
    payout = Payout.objects.get(request_id=refund_id)
    services.payout_approve(payout_id=payout.pk, actor=finance)
    services.payout_execute(payout_id=payout.pk)


@pytest.mark.parametrize(("split", "amounts"), [((1, 1, 1), ["10.00", "10.00", "9.99"]), ((2, 1), ["19.99", "10.00"])])
def test_the_last_unit_takes_what_is_left_so_the_amounts_add_up_exactly(split, amounts, support, support_user2, finance):
    order = _discounted_order()
    ids = []
    for qty in split:
        refund_id = journeys.submit(order, kind="refund_only", reason="not_as_described", lines=[LineRequest("SKU-D", qty)])
        services.refund_evaluate(refund_id=refund_id, actor=SYSTEM)
        services.refund_approve(refund_id=refund_id, actor=support)
        if journeys.state_of(refund_id) == RefundRequest.State.UNDER_REVIEW:
            # Refunding most of what was bought puts the customer on the watch list.
            services.refund_approve(refund_id=refund_id, actor=Actor.for_user(support_user2))
        _pay(refund_id, finance)
        ids.append(refund_id)

    paid = [str(RefundRequest.objects.get(pk=i).amount_paid) for i in ids]
    assert paid == amounts
    order.refresh_from_db()
    line = order.lines.get()
    assert (line.refunded_quantity, line.refunded_amount, line.held_quantity, line.held_amount) == (3, D("29.99"), 0, D("0"))
    assert (order.refunded_total, order.held_total, order.refund_status) == (D("29.99"), D("0.00"), "full")


def test_refund_status_goes_none_partial_full(support, finance):
    order = OrderFactory(lines=[("A", 1, "30.00"), ("B", 1, "40.00")])
    assert order.refund_status == "none"

    first = journeys.evaluated(order, kind="refund_only", lines=[LineRequest("A", 1)])
    order.refresh_from_db()
    assert order.refund_status == "none"  # held is not refunded
    _pay(first, finance)
    order.refresh_from_db()
    assert (order.refunded_total, order.refund_status) == (D("30.00"), "partial")

    second = journeys.evaluated(order, kind="refund_only", lines=[LineRequest("B", 1)])
    _pay(second, finance)
    order.refresh_from_db()
    assert (order.refunded_total, order.refund_status) == (D("70.00"), "full")


def test_a_request_that_ends_without_money_gives_its_hold_back(support):
    order = OrderFactory(lines=[("A", 2, "30.00")])
    refund_id = journeys.evaluated(order, reason="not_as_described", lines=[LineRequest("A", 1)])
    order.refresh_from_db()
    assert order.held_total == D("30.00")

    services.refund_reject(refund_id=refund_id, actor=support, reason="worn")

    order.refresh_from_db()
    assert (order.held_total, order.refunded_total) == (D("0.00"), D("0.00"))
    assert order.lines.get().held_quantity == 0
    # ... and the unit can be asked for again.
    assert journeys.submit(order, lines=[LineRequest("A", 2)])


# --- store credit and coupons -------------------------------------------------------------------


def _killed_after_paying(monkeypatch):
    """The worker dies after the money moved but before the result was recorded."""
    calls = []

    def die(**kwargs):
        calls.append(kwargs)
        raise KeyboardInterrupt("worker killed")

    monkeypatch.setattr(payouts, "payout_record_result", die)
    return calls


def _sweep_later(payout_id):
    Payout.objects.filter(pk=payout_id).update(processing_started_at=timezone.now() - timedelta(hours=1))
    from refunds.tasks import sweep_payouts

    return sweep_payouts()


def test_store_credit_is_a_ledger_and_the_balance_is_its_sum(finance, monkeypatch):
    order = OrderFactory(lines=[("A", 1, "12.00"), ("B", 1, "8.50")])
    first = journeys.evaluated(order, kind="refund_only", method="store_credit", lines=[LineRequest("A", 1)])
    _pay(first, finance)
    second = journeys.evaluated(order, kind="refund_only", method="store_credit", lines=[LineRequest("B", 1)])
    payout = Payout.objects.get(request_id=second)
    services.payout_approve(payout_id=payout.pk, actor=finance)
    with monkeypatch.context() as m:
        calls = _killed_after_paying(m)
        with pytest.raises(KeyboardInterrupt):
            services.payout_execute(payout_id=payout.pk)
        assert calls
    assert _sweep_later(payout.pk) == 1  # re-driven with the same payout

    entries = WalletEntry.objects.filter(customer=order.customer)
    assert sorted(entries.values_list("amount", flat=True)) == [D("8.50"), D("12.00")]  # not credited twice
    assert entries.aggregate(s=Sum("amount"))["s"] == D("20.50")
    assert not [f for f in WalletEntry._meta.get_fields() if "balance" in f.name]  # nothing to drift
    payout.refresh_from_db()
    assert payout.state == Payout.State.SUCCEEDED
    assert payout.gateway_reference == f"WALLET-{payout.wallet_entry.pk}"


def test_a_coupon_is_generated_once_with_its_value_and_expiry(finance, monkeypatch, settings):
    settings.REFUND_DESK = {**settings.REFUND_DESK, "COUPON_VALID_DAYS": 90}
    order = OrderFactory(lines=[("A", 1, "15.00")])
    refund_id = journeys.evaluated(order, kind="refund_only", method="coupon")
    payout = Payout.objects.get(request_id=refund_id)
    services.payout_approve(payout_id=payout.pk, actor=finance)
    with monkeypatch.context() as m:
        _killed_after_paying(m)
        with pytest.raises(KeyboardInterrupt):
            services.payout_execute(payout_id=payout.pk)
    code = Coupon.objects.get(payout=payout).code

    _sweep_later(payout.pk)

    coupon = Coupon.objects.get(customer=order.customer)  # exactly one
    assert (coupon.code, coupon.amount, coupon.currency) == (code, D("15.00"), "CNY")
    assert timedelta(days=89) < coupon.expires_at - timezone.now() <= timedelta(days=90)
    payout.refresh_from_db()
    assert (payout.state, payout.gateway_reference) == (Payout.State.SUCCEEDED, f"COUPON-{code}")
    assert RefundRequest.objects.get(pk=refund_id).state == RefundRequest.State.REFUNDED
