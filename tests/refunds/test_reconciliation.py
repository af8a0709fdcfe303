"""Reconciliation against the gateway's books: every difference listed, none fixed silently."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from config.actors import Actor
from notifications.models import Notification
from refunds import reconciliation, services
from refunds.errors import ActionForbidden, RefundValidationError
from refunds.gateways.simulated import SimulatedGateway
from refunds.models import Payout, ReconciliationDifference, ReconciliationRun
from tests.factories import OrderFactory, UserFactory
from tests.refunds import journeys

pytestmark = pytest.mark.django_db
K = ReconciliationDifference.Kind
D = Decimal


def _paid(finance, amount="15.00") -> Payout:
    order = OrderFactory(lines=[("SKU-1", 1, amount)])
    payout = Payout.objects.get(request_id=journeys.evaluated(order, kind="refund_only"))
    services.payout_approve(payout_id=payout.pk, actor=finance)
    services.payout_execute(payout_id=payout.pk)
    payout.refresh_from_db()
    assert payout.state == Payout.State.SUCCEEDED
    return payout


def _diffs():
    return {(d.kind, d.payout_id) for d in ReconciliationDifference.objects.all()}


def test_books_that_agree_make_a_clean_run(finance):
    paid = [_paid(finance), _paid(finance, "20.00")]

    run = reconciliation.reconciliation_run(day=timezone.localdate(), actor=finance)

    assert (run.state, run.gateway_count, run.our_count, run.differences) == (ReconciliationRun.State.CLEAN, 2, 2, 0)
    assert run.gateway_totals == run.our_totals == {"CNY": "35.00"}
    assert not ReconciliationDifference.objects.exists()
    assert not Notification.objects.filter(event="reconciliation_differences").exists()
    assert {p.pk for p in paid} == set(Payout.objects.filter(state="succeeded").values_list("pk", flat=True))


def test_a_refund_planted_in_the_gateways_books_is_listed_and_finance_alerted(finance):
    paid = _paid(finance)
    payment = f"PAY-{paid.request.order.number}"
    # The gateway refunded the same payment a second time under a key we never used.
    stranger = SimulatedGateway.plant_refund(idempotency_key=str(uuid.uuid4()), payment_reference=payment, amount=D("15.00"))

    run = reconciliation.reconciliation_run(day=timezone.localdate(), actor=finance)

    assert (run.state, run.differences) == (ReconciliationRun.State.DIFFERENCES, 2)
    there = ReconciliationDifference.objects.get(kind=K.PAID_THERE_NOT_HERE)
    assert (there.gateway_reference, there.payout, there.gateway_amount, there.payment_reference) == (
        stranger.reference,
        None,
        D("15.00"),
        payment,
    )
    twice = ReconciliationDifference.objects.get(kind=K.PAID_TWICE)
    assert (twice.payment_reference, twice.gateway_amount, twice.our_amount) == (payment, D("30.00"), D("15.00"))
    [alert] = Notification.objects.filter(event="reconciliation_differences", recipient="finance")
    assert "2 difference" in alert.body


def test_a_payout_the_gateway_paid_but_our_books_voided_is_paid_there_not_here(finance):
    order = OrderFactory(lines=[("SKU-1", 1, "18.00")])
    voided = Payout.objects.get(request_id=journeys.evaluated(order, kind="refund_only"))
    services.payout_void(payout_id=voided.pk, actor=finance, reissue_method="store_credit")
    SimulatedGateway.plant_refund(
        idempotency_key=str(voided.idempotency_key), payment_reference=f"PAY-{order.number}", amount=D("18.00")
    )

    reconciliation.reconciliation_run(day=timezone.localdate(), actor=finance)

    assert _diffs() == {(K.PAID_THERE_NOT_HERE, voided.pk)}


def test_amounts_that_differ_and_a_payout_the_gateway_never_made(finance):
    differs = _paid(finance)
    missing = _paid(finance, "9.90")
    from refunds.gateways.simulated.models import GatewayLedgerEntry

    GatewayLedgerEntry.objects.filter(idempotency_key=str(differs.idempotency_key)).update(amount=D("51.00"))
    GatewayLedgerEntry.objects.filter(idempotency_key=str(missing.idempotency_key)).delete()

    reconciliation.reconciliation_run(day=timezone.localdate(), actor=finance)

    assert _diffs() == {(K.AMOUNT_DIFFERS, differs.pk), (K.PAID_HERE_NOT_THERE, missing.pk)}
    got = ReconciliationDifference.objects.get(kind=K.AMOUNT_DIFFERS)
    assert (got.gateway_amount, got.our_amount) == (D("51.00"), D("15.00"))


def test_a_refund_on_the_next_days_report_is_not_a_difference(finance):
    late = _paid(finance)
    from refunds.gateways.simulated.models import GatewayLedgerEntry

    GatewayLedgerEntry.objects.filter(idempotency_key=str(late.idempotency_key)).update(
        created_at=timezone.now() + timedelta(days=1)
    )

    run = reconciliation.reconciliation_run(day=timezone.localdate(), actor=finance)

    assert (run.gateway_count, run.our_count, run.differences) == (0, 1, 0)


def test_a_second_run_finds_the_same_difference_without_doubling_it_or_closing_it(finance):
    paid = _paid(finance)
    SimulatedGateway.plant_refund(
        idempotency_key="not-ours", payment_reference=f"PAY-{paid.request.order.number}", amount=D("3.00")
    )
    reconciliation.reconciliation_run(day=timezone.localdate(), actor=finance)
    assert ReconciliationDifference.objects.count() == 2  # paid there, not here; and that payment twice
    first = ReconciliationDifference.objects.get(kind=K.PAID_THERE_NOT_HERE)

    reconciliation.reconciliation_run(day=timezone.localdate(), actor=finance)

    assert ReconciliationDifference.objects.count() == 2
    again = ReconciliationDifference.objects.get(kind=K.PAID_THERE_NOT_HERE)
    assert again.pk == first.pk and again.last_seen_at > first.last_seen_at and again.resolved_at is None
    assert Notification.objects.filter(event="reconciliation_differences").count() == 1  # only new ones alert


def test_a_difference_is_resolved_only_by_a_person_with_a_note(finance, support):
    paid = _paid(finance)
    SimulatedGateway.plant_refund(
        idempotency_key="not-ours", payment_reference=f"PAY-{paid.request.order.number}", amount=D("3.00")
    )
    reconciliation.reconciliation_run(day=timezone.localdate(), actor=finance)
    diff = ReconciliationDifference.objects.get(kind=K.PAID_THERE_NOT_HERE)

    with pytest.raises(RefundValidationError):
        reconciliation.reconciliation_resolve(difference_ids=[diff.pk], actor=finance, note="  ")
    with pytest.raises(ActionForbidden):
        reconciliation.reconciliation_resolve(difference_ids=[diff.pk], actor=support, note="looked at it")
    diff.refresh_from_db()
    assert diff.resolved_at is None

    assert (
        reconciliation.reconciliation_resolve(
            difference_ids=[diff.pk], actor=finance, note="Refund reversed by the gateway's support, ticket 4411."
        )
        == 1
    )
    diff.refresh_from_db()
    assert (diff.resolved_by, diff.resolution_note) == (finance.user, "Refund reversed by the gateway's support, ticket 4411.")


def test_a_gateway_that_does_not_answer_makes_a_failed_run_and_tells_finance(finance, monkeypatch):
    def down(self, *, day):
        raise TimeoutError("the refund report did not come")

    monkeypatch.setattr(SimulatedGateway, "refunds_for_day", down)

    run = reconciliation.reconciliation_run(day=timezone.localdate(), actor=finance)

    assert run.state == ReconciliationRun.State.FAILED and "did not come" in run.error
    assert Notification.objects.filter(event="reconciliation_failed", recipient="finance").count() == 1


def test_only_finance_reconciles_and_not_a_day_to_come(finance, support):
    with pytest.raises(ActionForbidden):
        reconciliation.reconciliation_run(day=timezone.localdate(), actor=support)
    with pytest.raises(RefundValidationError):
        reconciliation.reconciliation_run(day=timezone.localdate() + timedelta(days=1), actor=finance)
    assert not ReconciliationRun.objects.exists()


def test_the_daily_job_checks_the_last_two_days(finance):
    from refunds.tasks import reconcile_yesterday

    reconcile_yesterday()

    today = timezone.localdate()
    assert sorted(ReconciliationRun.objects.values_list("day", flat=True)) == [
        today - timedelta(days=2),
        today - timedelta(days=1),
    ]
    assert set(ReconciliationRun.objects.values_list("requested_by", flat=True)) == {None}


def test_risk_may_not_resolve_either():
    risk = Actor.for_user(UserFactory(username="risk-x", role="risk"))
    with pytest.raises(ActionForbidden):
        reconciliation.reconciliation_resolve(difference_ids=[], actor=risk, note="x")
