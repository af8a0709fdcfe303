"""Races against real PostgreSQL: real threads, each with its own connection, released together.

These are `transaction=True` tests: every service commits for real, so the row locks and
conditional updates are what decides, not a test transaction around everything.
"""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from config.actors import Actor
from orders.models import Order
from refunds import services
from refunds.errors import RefundError, RefundNotAllowed, RefundValidationError
from refunds.gateways import get_gateway
from refunds.gateways.simulated import SimulatedGateway
from refunds.gateways.simulated.models import GatewayLedgerEntry
from refunds.models import Payout, RefundEvent, RefundRequest
from refunds.services import intake, payouts
from refunds.tasks import sweep_payouts
from tests.factories import OrderFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
D = Decimal


@pytest.fixture
def queued(monkeypatch):
    """Tasks go to a list instead of running inline: the test decides who runs them, when."""
    calls = []
    monkeypatch.setattr(intake, "enqueue_swept_on_commit", lambda func, *args: calls.append((func, args)))
    monkeypatch.setattr(payouts, "enqueue_on_commit", lambda func, *args: calls.append((func, args)))
    return calls


@pytest.fixture
def finance_actor(transactional_db):
    return Actor.for_user(UserFactory(username="finance-race", role="finance"))


def run_together(n: int, fn):
    """Start `n` threads at the same instant; return what each returned or raised."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def worker(i):
        try:
            barrier.wait(timeout=10)
            results[i] = fn(i)
        except BaseException as exc:  # noqa: BLE001 - the test inspects every outcome
            results[i] = exc
        finally:
            connection.close()  # each thread opened its own connection

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a worker hung (deadlock?)"
    return results


def _approved_payout(finance_actor, amount="15.00") -> Payout:
    order = OrderFactory(lines=[("SKU-1", 1, amount)])
    refund, _ = services.refund_submit(
        actor=Actor.for_channel(order.channel),
        channel=order.channel,
        idempotency_key=f"race-{order.pk}",
        order_number=order.number,
        kind="refund_only",
        reason="size_fit",
    )
    services.refund_evaluate(refund_id=refund.pk)
    payout = Payout.objects.get(request=refund)
    services.payout_approve(payout_id=payout.pk, actor=finance_actor)
    assert Payout.objects.get(pk=payout.pk).state == Payout.State.APPROVED
    return payout


def _ledger(payout):
    return GatewayLedgerEntry.objects.filter(idempotency_key=str(payout.idempotency_key))


def test_twenty_workers_executing_one_payout_pay_it_once(queued, finance_actor):
    payout = _approved_payout(finance_actor)
    SimulatedGateway.set_mode("ok", delay_ms=50)  # a slow gateway widens the window

    results = run_together(20, lambda i: services.payout_execute(payout_id=payout.pk))

    assert not [r for r in results if isinstance(r, BaseException)], results
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and winners[0].state == Payout.State.SUCCEEDED
    assert _ledger(payout).count() == 1
    payout.refresh_from_db()
    assert (payout.state, payout.attempts) == (Payout.State.SUCCEEDED, 1)
    assert RefundEvent.objects.filter(payout=payout, action="payout_execute").count() == 1
    assert RefundEvent.objects.filter(payout=payout, action="payout_succeeded").count() == 1
    order = Order.objects.get(pk=payout.request.order_id)
    assert (order.refunded_total, order.held_total) == (D("15.00"), D("0.00"))


def test_ten_requests_for_the_whole_order_at_once_accept_exactly_one(queued):
    order = OrderFactory(lines=[("A", 2, "30.00"), ("B", 1, "45.50")])
    channel = Actor.for_channel(order.channel)

    def submit(i):
        return services.refund_submit(
            actor=channel,
            channel=order.channel,
            idempotency_key=f"whole-{i}",
            order_number=order.number,
            kind="return_and_refund",
            reason="changed_mind",
        )

    results = run_together(10, submit)

    created = [r for r in results if isinstance(r, tuple)]
    refused = [r for r in results if isinstance(r, RefundValidationError)]
    assert len(created) == 1, results
    assert len(refused) == 9, results
    assert all("Nothing is left to refund" in e.message for e in refused)
    refund = RefundRequest.objects.get(order=order)
    assert refund.amount_requested == D("105.50")
    order.refresh_from_db()
    assert (order.held_total, order.refunded_total) == (D("105.50"), D("0.00"))
    assert dict(order.lines.values_list("sku", "held_quantity")) == {"A": 2, "B": 1}
    assert RefundEvent.objects.filter(request__order=order).count() == 1  # one submit, nothing else


def test_two_requests_for_the_last_unit_one_wins_and_the_loser_can_have_the_rest(queued):
    order = OrderFactory(lines=[("A", 3, "10.00")])
    channel = Actor.for_channel(order.channel)
    from refunds.services import LineRequest

    def submit(i):
        return services.refund_submit(
            actor=channel,
            channel=order.channel,
            idempotency_key=f"unit-{i}",
            order_number=order.number,
            kind="refund_only",
            reason="changed_mind",
            lines=[LineRequest("A", 2)],
        )

    results = run_together(2, submit)

    assert sorted("error" if isinstance(r, RefundValidationError) else type(r).__name__ for r in results) == ["error", "tuple"], (
        results
    )
    order.refresh_from_db()
    line = order.lines.get()
    assert (line.held_quantity, line.held_amount, order.held_total) == (2, D("20.00"), D("20.00"))


def _unknown_after_paying(finance_actor) -> Payout:
    """A payout the gateway paid and then timed out on: its outcome is unknown, asked about now."""
    payout = _approved_payout(finance_actor)
    SimulatedGateway.set_mode("timeout_after_success", calls=1)
    services.payout_execute(payout_id=payout.pk)
    payout.refresh_from_db()
    assert payout.state == Payout.State.OUTCOME_UNKNOWN and payout.error.startswith("timeout")
    assert _ledger(payout).count() == 1  # it did pay
    Payout.objects.filter(pk=payout.pk).update(next_status_check_at=timezone.now() - timedelta(seconds=1))
    return payout


def _paid_once(payout) -> None:
    """One refund in the gateway's books for the payment, the same amount in ours."""
    payout.refresh_from_db()
    order = Order.objects.select_related("payment").get(pk=payout.request.order_id)
    paid = GatewayLedgerEntry.objects.filter(payment_reference=order.payment.reference)
    assert paid.count() == 1, list(paid)
    assert order.refunded_total == paid.get().amount == payout.amount
    assert RefundRequest.objects.get(pk=payout.request_id).state == RefundRequest.State.REFUNDED


def test_a_timeout_after_paying_then_void_and_reissue_racing_the_sweeper_pays_once(queued, finance_actor):
    payout = _unknown_after_paying(finance_actor)
    other = Actor.for_user(UserFactory(username="finance-race-2", role="finance"))

    def act(i):
        if i == 0:
            return services.payout_void(payout_id=payout.pk, actor=finance_actor, reissue_method="original_payment")
        if i == 1:
            return services.payout_void(payout_id=payout.pk, actor=other, reissue_method="original_payment")
        return sweep_payouts()

    results = run_together(3, act)

    assert all(isinstance(r, RefundNotAllowed) for r in results[:2]), results
    assert Payout.objects.filter(request_id=payout.request_id).count() == 1  # nothing was reissued
    _paid_once(payout)
    # Once the gateway has said it paid, there is nothing left to void either.
    with pytest.raises(RefundNotAllowed):
        services.payout_void(payout_id=payout.pk, actor=finance_actor, reissue_method="original_payment")


def test_a_timeout_after_paying_retried_by_two_people_while_the_sweeper_asks_pays_once(queued, finance_actor):
    payout = _unknown_after_paying(finance_actor)
    other = Actor.for_user(UserFactory(username="finance-race-2", role="finance"))

    results = run_together(
        4,
        lambda i: (
            services.payout_retry(payout_id=payout.pk, actor=[finance_actor, other][i])
            if i < 2
            else services.payout_check_status(payout_id=payout.pk)
        ),
    )

    assert all(isinstance(r, RefundNotAllowed) for r in results[:2]), results
    assert not [args for func, args in queued if func == "refunds.tasks.payout_send_task"]
    assert RefundEvent.objects.filter(payout=payout, action="payout_succeeded").count() == 1
    _paid_once(payout)


def test_two_finance_people_act_on_a_confirmed_failure_at_once_and_it_is_paid_once(queued, finance_actor):
    payout = _approved_payout(finance_actor)
    SimulatedGateway.set_mode("timeout", calls=1)  # timed out before paying
    services.payout_execute(payout_id=payout.pk)
    Payout.objects.filter(pk=payout.pk).update(next_status_check_at=timezone.now() - timedelta(seconds=1))
    sweep_payouts()  # the gateway, asked, confirms it did not pay
    payout.refresh_from_db()
    assert payout.state == Payout.State.FAILED and _ledger(payout).count() == 0
    other = Actor.for_user(UserFactory(username="finance-race-2", role="finance"))
    third = Actor.for_user(UserFactory(username="finance-race-3", role="finance"))

    results = run_together(
        2,
        lambda i: (
            services.payout_void(payout_id=payout.pk, actor=finance_actor, reissue_method="original_payment")
            if i == 0
            else services.payout_retry(payout_id=payout.pk, actor=other)
        ),
    )

    assert sorted("refused" if isinstance(r, RefundNotAllowed) else type(r).__name__ for r in results) == ["Payout", "refused"], (
        results
    )
    # Run whatever the winner queued, and pay a replacement if the void won.
    for func, args in list(queued):
        if func == "refunds.tasks.payout_send_task":
            services.payout_send(payout_id=args[0])
    for replacement in Payout.objects.filter(request_id=payout.request_id, state=Payout.State.PENDING_APPROVAL):
        services.payout_approve(payout_id=replacement.pk, actor=third)
        services.payout_execute(payout_id=replacement.pk)
    order = Order.objects.select_related("payment").get(pk=payout.request.order_id)
    paid = GatewayLedgerEntry.objects.filter(payment_reference=order.payment.reference)
    assert paid.count() == 1
    assert order.refunded_total == paid.get().amount == D("15.00")


def test_a_worker_killed_mid_call_is_re_driven_once_by_concurrent_sweepers(queued, finance_actor):
    payout = _approved_payout(finance_actor)
    assert services.payout_claim(payout_id=payout.pk)
    # The dead worker had reached the gateway; then it vanished, leaving `processing`.
    get_gateway().refund(
        idempotency_key=str(payout.idempotency_key), payment_reference="PAY", amount=payout.amount, currency="CNY"
    )
    Payout.objects.filter(pk=payout.pk).update(processing_started_at=timezone.now() - timedelta(hours=1))

    results = run_together(5, lambda i: sweep_payouts())

    assert not [r for r in results if isinstance(r, BaseException)], results
    payout.refresh_from_db()
    assert payout.state == Payout.State.SUCCEEDED
    assert _ledger(payout).count() == 1
    assert RefundEvent.objects.filter(payout=payout, action="payout_succeeded").count() == 1


def test_approve_and_void_at_once_one_of_them_wins(queued, finance_actor):
    order = OrderFactory(lines=[("SKU-1", 1, "15.00")])
    refund, _ = services.refund_submit(
        actor=Actor.for_channel(order.channel),
        channel=order.channel,
        idempotency_key="approve-void",
        order_number=order.number,
        kind="refund_only",
        reason="size_fit",
    )
    services.refund_evaluate(refund_id=refund.pk)
    payout = Payout.objects.get(request=refund)

    results = run_together(
        2,
        lambda i: (
            services.payout_approve(payout_id=payout.pk, actor=finance_actor)
            if i == 0
            else services.payout_void(payout_id=payout.pk, actor=finance_actor, reissue_method="store_credit")
        ),
    )

    assert len([r for r in results if isinstance(r, Payout)]) == 1, results
    assert len([r for r in results if isinstance(r, RefundNotAllowed)]) == 1, results
    payout.refresh_from_db()
    assert payout.state in (Payout.State.APPROVED, Payout.State.VOIDED)
    assert RefundEvent.objects.filter(payout=payout).count() == 1
    assert not [r for r in results if isinstance(r, RefundError) and not isinstance(r, RefundNotAllowed)]


_WORKER = """
import os, sys, time
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
django.setup()
from refunds import services
start_at, payout_id = float(sys.argv[1]), int(sys.argv[2])
time.sleep(max(0.0, start_at - time.time()))
payout = services.payout_execute(payout_id=payout_id)
print("won" if payout is not None else "lost")
"""


def test_eight_processes_executing_one_payout_pay_it_once(queued, finance_actor, subprocess_env):
    import subprocess
    import sys
    import time
    from pathlib import Path

    payout = _approved_payout(finance_actor)
    SimulatedGateway.set_mode("ok", delay_ms=50)
    start_at = time.time() + 6  # every process has imported Django by then
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(start_at), str(payout.pk)],
            cwd=Path(__file__).resolve().parents[2],
            env=subprocess_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    outcomes = [p.communicate(timeout=90) for p in procs]

    assert all(p.returncode == 0 for p in procs), [err for _, err in outcomes]
    assert sorted(out.strip() for out, _ in outcomes) == ["lost"] * 7 + ["won"]
    payout.refresh_from_db()
    assert (payout.state, payout.attempts) == (Payout.State.SUCCEEDED, 1)
    assert _ledger(payout).count() == 1


def test_a_bulk_approval_and_a_service_holding_the_request_do_not_deadlock(queued, finance_actor):
    """A service locks order → request → payout; a bulk approval locks the payouts and then
    writes events that reference their requests. With plain FOR UPDATE the event insert waits
    for the request's lock while holding the payout's: a deadlock. Row locks that leave the
    key alone (FOR NO KEY UPDATE) let the insert through."""
    import time

    from django.db import transaction

    order = OrderFactory(lines=[("SKU-1", 1, "15.00")])
    refund, _ = services.refund_submit(
        actor=Actor.for_channel(order.channel),
        channel=order.channel,
        idempotency_key="deadlock",
        order_number=order.number,
        kind="refund_only",
        reason="size_fit",
    )
    services.refund_evaluate(refund_id=refund.pk)
    payout = Payout.objects.get(request=refund)

    def service_holding_the_request(i):
        if i == 0:
            with transaction.atomic():
                services.lock_refund(refund.pk, with_lines=True)
                time.sleep(1.0)  # the bulk approval runs meanwhile
                return services.lock_payout(payout.pk).state
        time.sleep(0.2)
        return services.payout_approve_bulk(payout_ids=[payout.pk], actor=finance_actor).approved

    results = run_together(2, service_holding_the_request)

    assert not [r for r in results if isinstance(r, BaseException)], results
    assert results == [Payout.State.APPROVED, [payout.pk]]
