"""Automatic evaluation after intake: the task is queued only after commit, the decision
and next state, and the sweeper that picks up what a dead task left in `submitted`."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Schedule

from config.actors import Actor
from refunds import services, tasks
from refunds.models import RefundPolicy, RefundRequest, ReturnParcel
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


def submit(order, key="k", **kw):
    refund, _ = services.refund_submit(
        actor=Actor.for_channel(order.channel),
        channel=order.channel,
        idempotency_key=key,
        order_number=order.number,
        kind=kw.pop("kind", "return_and_refund"),
        reason=kw.pop("reason", "size_fit"),
        **kw,
    )
    return refund


def test_evaluation_is_queued_only_after_commit(django_capture_on_commit_callbacks, monkeypatch):
    queued = []
    monkeypatch.setattr("config.q2.async_task", lambda func, *args, **kw: queued.append((func, args)))
    order = OrderFactory(lines=[("SKU-1", 1, "50.00")])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        refund = submit(order)
    assert queued == [] and RefundRequest.objects.get(pk=refund.pk).state == "submitted"
    for cb in callbacks:
        cb()
    assert ("refunds.tasks.refund_evaluate_task", (refund.pk,)) in queued


def test_an_approved_return_gets_a_code_address_and_deadline(django_capture_on_commit_callbacks):
    order = OrderFactory(lines=[("SKU-1", 1, "50.00")])
    with django_capture_on_commit_callbacks(execute=True):
        refund = submit(order)
    refund.refresh_from_db()
    assert refund.state == "awaiting_return" and refund.decided_by == "system"
    parcel = ReturnParcel.objects.get(request=refund)
    assert parcel.return_code.isdigit() and parcel.address and parcel.deadline > timezone.now()
    assert [s["rule"] for s in refund.rule_trace][:2] == ["order_paid", "return_window"]


@pytest.mark.parametrize("own_policy", [False, True])
def test_the_return_deadline_is_the_policys_return_window(own_policy, django_capture_on_commit_callbacks):
    # One return window: the one the merchant edits in the admin, per channel or the default.
    order = OrderFactory(lines=[("SKU-1", 1, "50.00")])
    if own_policy:
        RefundPolicy.objects.create(channel=order.channel, name="shop", return_window_days=9)
    else:
        RefundPolicy.objects.filter(channel__isnull=True).update(return_window_days=45)
    with django_capture_on_commit_callbacks(execute=True):
        refund = submit(order)
    parcel = ReturnParcel.objects.get(request=refund)
    days = 9 if own_policy else 45
    assert abs(parcel.deadline - (timezone.now() + timedelta(days=days))) < timedelta(minutes=1)


def test_a_small_return_becomes_refund_only_and_ready_for_payout(django_capture_on_commit_callbacks):
    order = OrderFactory(lines=[("SKU-1", 1, "15.00")])
    with django_capture_on_commit_callbacks(execute=True):
        refund = submit(order)
    refund.refresh_from_db()
    assert (refund.state, refund.kind, refund.requested_kind) == ("ready_for_payout", "refund_only", "return_and_refund")
    assert refund.payouts.get().amount == refund.amount_requested
    assert not ReturnParcel.objects.filter(request=refund).exists()


def test_the_channels_policy_decides(django_capture_on_commit_callbacks):
    order = OrderFactory(lines=[("SKU-1", 1, "50.00")])
    RefundPolicy.objects.create(channel=order.channel, name="strict", auto_approve_limit="10.00")
    with django_capture_on_commit_callbacks(execute=True):
        refund = submit(order)
    refund.refresh_from_db()
    assert refund.state == "under_review"
    assert refund.escalation_reason == "50.00 is above the auto-approve limit 10.00"


def test_the_sweeper_evaluates_what_a_dead_task_left_behind():
    old = submit(OrderFactory(lines=[("SKU-1", 1, "15.00")]), key="old")
    fresh = submit(OrderFactory(lines=[("SKU-1", 1, "15.00")]), key="fresh")
    # No callbacks ran: as if the worker died before evaluating either.
    RefundRequest.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert tasks.sweep_submitted() == 1
    assert RefundRequest.objects.get(pk=old.pk).state == "ready_for_payout"
    assert RefundRequest.objects.get(pk=fresh.pk).state == "submitted", "a fresh one is still its task's"
    assert tasks.sweep_submitted() == 0
    assert Schedule.objects.filter(func="refunds.tasks.sweep_submitted").exists()


def test_evaluating_twice_changes_nothing_the_second_time(django_capture_on_commit_callbacks):
    order = OrderFactory(lines=[("SKU-1", 1, "15.00")])
    with django_capture_on_commit_callbacks(execute=True):
        refund = submit(order)
    events = refund.events.count()
    services.refund_evaluate(refund_id=refund.pk)
    assert refund.events.count() == events
