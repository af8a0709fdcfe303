"""Payouts: the state machine, the gateway's misbehaviour, and "executed at most once"."""

import contextlib
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from config.actors import SYSTEM
from notifications.models import Notification
from refunds import services
from refunds.errors import RefundNotAllowed, RefundValidationError
from refunds.gateways import get_gateway
from refunds.gateways.simulated import SimulatedGateway
from refunds.gateways.simulated.models import GatewayLedgerEntry
from refunds.models import Payout, PayoutBatch, RefundEvent, RefundRequest, sources_of
from refunds.services import payouts
from refunds.tasks import sweep_payouts
from tests.factories import OrderFactory
from tests.refunds import journeys

pytestmark = pytest.mark.django_db
P = Payout.State
D = Decimal


def _pending(amount="15.00", method="original_payment") -> Payout:
    order = OrderFactory(lines=[("SKU-1", 1, amount)])
    refund_id = journeys.evaluated(order, kind="refund_only", method=method)
    return Payout.objects.get(request_id=refund_id)


def _approved(finance) -> Payout:
    payout = _pending()
    services.payout_approve(payout_id=payout.pk, actor=finance)  # on-commit execution not run
    return payout


def _ledger(payout) -> list:
    return list(GatewayLedgerEntry.objects.filter(idempotency_key=str(payout.idempotency_key)))


def _reload(payout) -> Payout:
    return Payout.objects.get(pk=payout.pk)


def test_a_payout_is_paid_through_the_gateway_with_its_own_idempotency_key(finance, django_capture_on_commit_callbacks):
    payout = _pending()
    with django_capture_on_commit_callbacks(execute=True):
        services.payout_approve(payout_id=payout.pk, actor=finance)

    payout = _reload(payout)
    [entry] = _ledger(payout)
    assert (payout.state, payout.attempts, payout.gateway_reference) == (P.SUCCEEDED, 1, entry.reference)
    assert (entry.amount, entry.currency, entry.payment_reference) == (D("15.00"), "CNY", f"PAY-{payout.request.order.number}")
    assert payout.request.state == RefundRequest.State.REFUNDED


def test_executing_twice_pays_once(finance):
    payout = _approved(finance)

    first = services.payout_execute(payout_id=payout.pk)
    second = services.payout_execute(payout_id=payout.pk)

    assert first.state == P.SUCCEEDED
    assert second is None  # lost the claim: did nothing
    assert len(_ledger(payout)) == 1
    assert RefundEvent.objects.filter(payout=payout, action="payout_execute").count() == 1


def test_a_declined_payout_fails_tells_finance_and_is_retried_with_the_same_key(finance, django_capture_on_commit_callbacks):
    payout = _approved(finance)
    SimulatedGateway.set_mode("fail", calls=1)

    services.payout_execute(payout_id=payout.pk)

    payout = _reload(payout)
    assert (payout.state, payout.error) == (P.FAILED, "declined by the gateway (simulated)")
    assert _ledger(payout) == []
    assert Notification.objects.filter(event="payout_failed", recipient="finance", refund=payout.request).exists()
    assert payout.request.state == RefundRequest.State.READY_FOR_PAYOUT
    key = payout.idempotency_key

    with django_capture_on_commit_callbacks(execute=True):
        services.payout_retry(payout_id=payout.pk, actor=finance)

    payout = _reload(payout)
    assert (payout.state, payout.attempts, payout.idempotency_key, payout.error) == (P.SUCCEEDED, 2, key, "")
    assert len(_ledger(payout)) == 1


def _due(payout) -> None:
    """Make the sweeper's next question about an unknown outcome due now."""
    Payout.objects.filter(pk=payout.pk).update(next_status_check_at=timezone.now() - timedelta(seconds=1))


def test_the_double_refund_of_po_115_can_not_happen(finance, finance_user2, django_capture_on_commit_callbacks):
    """The reported incident: the gateway paid, then timed out; the payout was marked failed,
    finance voided it with a reissue to the original payment, a second finance user approved
    the replacement under a new key, and the gateway held two refunds for one payment.

    Whatever finance tries while the outcome is unknown, the gateway's ledger must end with
    exactly one refund, and our books with the same amount refunded."""
    from config.actors import Actor

    payout = _approved(finance)
    payment = f"PAY-{payout.request.order.number}"
    SimulatedGateway.set_mode("timeout_after_success", calls=1)
    services.payout_execute(payout_id=payout.pk)

    with contextlib.suppress(RefundNotAllowed):
        services.payout_void(payout_id=payout.pk, actor=finance, note="failed; pay again", reissue_method="original_payment")
        replacement = Payout.objects.filter(request=payout.request).exclude(pk=payout.pk).get()
        with django_capture_on_commit_callbacks(execute=True):
            services.payout_approve(payout_id=replacement.pk, actor=Actor.for_user(finance_user2))
    _due(payout)
    sweep_payouts()

    paid = GatewayLedgerEntry.objects.filter(payment_reference=payment)
    assert paid.count() == 1
    order = payout.request.order
    order.refresh_from_db()
    assert order.refunded_total == paid.get().amount == D("15.00")
    assert _reload(payout).state == P.SUCCEEDED


@pytest.mark.parametrize("mode", ["timeout", "timeout_after_success"])
def test_a_timeout_is_an_unknown_outcome_that_nobody_can_void_or_retry(mode, finance, django_capture_on_commit_callbacks):
    payout = _approved(finance)
    SimulatedGateway.set_mode(mode, calls=1)

    services.payout_execute(payout_id=payout.pk)

    payout = _reload(payout)
    assert payout.state == P.OUTCOME_UNKNOWN
    assert payout.error.startswith("timeout:")
    assert payout.outcome_unknown_at is not None and payout.next_status_check_at > timezone.now()
    assert RefundEvent.objects.filter(payout=payout, action="payout_outcome_unknown").count() == 1
    assert not Notification.objects.filter(event="payout_failed").exists()
    events = RefundEvent.objects.count()
    for act in (
        lambda: services.payout_void(payout_id=payout.pk, actor=finance, reissue_method="store_credit"),
        lambda: services.payout_retry(payout_id=payout.pk, actor=finance),
    ):
        with django_capture_on_commit_callbacks() as callbacks, pytest.raises(RefundNotAllowed, match="outcome is unknown"):
            act()
        assert callbacks == []
    assert (_reload(payout).state, RefundEvent.objects.count()) == (P.OUTCOME_UNKNOWN, events)
    assert Payout.objects.filter(request=payout.request).count() == 1  # nothing reissued
    assert sweep_payouts() == 0  # not due yet: the gateway is asked on a back-off


def test_the_sweeper_asks_the_gateway_and_a_paid_unknown_outcome_succeeds(finance, django_capture_on_commit_callbacks):
    payout = _approved(finance)
    SimulatedGateway.set_mode("timeout_after_success", calls=1)
    services.payout_execute(payout_id=payout.pk)
    _due(payout)

    with django_capture_on_commit_callbacks(execute=True):
        assert sweep_payouts() == 1

    payout = _reload(payout)
    [entry] = _ledger(payout)
    assert (payout.state, payout.gateway_reference, payout.attempts) == (P.SUCCEEDED, entry.reference, 1)
    assert payout.request.state == RefundRequest.State.REFUNDED
    event = RefundEvent.objects.get(payout=payout, action="payout_succeeded")
    assert (event.from_state, "says it paid" in event.note) == (P.OUTCOME_UNKNOWN, True)


def test_only_a_confirmed_not_paid_fails_it_and_then_the_retry_reuses_the_key(finance, django_capture_on_commit_callbacks):
    payout = _approved(finance)
    key = payout.idempotency_key
    SimulatedGateway.set_mode("timeout", calls=1)
    services.payout_execute(payout_id=payout.pk)
    _due(payout)

    sweep_payouts()

    payout = _reload(payout)
    assert (payout.state, payout.failure_permanent) == (P.FAILED, False)
    assert "confirmed it did not pay" in payout.error
    assert Notification.objects.filter(event="payout_failed", recipient="finance").count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        services.payout_retry(payout_id=payout.pk, actor=finance)
    payout = _reload(payout)
    assert (payout.state, payout.idempotency_key, payout.attempts) == (P.SUCCEEDED, key, 2)
    assert len(_ledger(payout)) == 1


def test_an_unanswered_question_is_asked_again_later_and_finance_is_alerted_once(finance, settings):
    settings.REFUND_DESK = {
        **settings.REFUND_DESK,
        "PAYOUT_STATUS_CHECK_FIRST_SECONDS": 30,
        "PAYOUT_STATUS_CHECK_MAX_SECONDS": 300,
        "PAYOUT_STATUS_ALERT_AFTER": 3,
    }
    payout = _approved(finance)
    SimulatedGateway.set_mode("timeout", calls=1, status_mode="timeout")
    services.payout_execute(payout_id=payout.pk)
    waits = []
    for _ in range(5):
        _due(payout)
        before = timezone.now()
        sweep_payouts()
        after = _reload(payout)
        waits.append(round((after.next_status_check_at - before).total_seconds() / 30))
    assert after.state == P.OUTCOME_UNKNOWN
    assert (after.status_checks, "did not answer in time" in after.status_answer) == (5, True)
    assert waits == [2, 4, 8, 10, 10]  # 60 s, 120 s, 240 s, then the 300 s cap
    alerts = Notification.objects.filter(event="payout_outcome_unknown", recipient="finance")
    assert alerts.count() == 1
    assert str(payout) in alerts.get().body


def test_an_error_of_ours_after_the_call_is_an_unknown_outcome_too(finance, monkeypatch):
    payout = _approved(finance)

    class Broken:
        def refund(self, **kwargs):
            raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr(payouts, "get_gateway", Broken)
    services.payout_execute(payout_id=payout.pk)

    after = _reload(payout)
    assert after.state == P.OUTCOME_UNKNOWN
    assert after.error == "unexpected error (ConnectionResetError): connection reset by peer"


def test_a_permanent_decline_is_not_retried_but_can_be_paid_another_way(finance, django_capture_on_commit_callbacks):
    payout = _approved(finance)
    SimulatedGateway.set_mode("decline_permanent", calls=1)
    services.payout_execute(payout_id=payout.pk)
    payout = _reload(payout)
    assert (payout.state, payout.failure_permanent) == (P.FAILED, True)

    with pytest.raises(RefundNotAllowed, match="declined for good"):
        services.payout_retry(payout_id=payout.pk, actor=finance)
    assert _reload(payout).state == P.FAILED

    services.payout_void(payout_id=payout.pk, actor=finance, note="card closed", reissue_method="coupon")
    replacement = Payout.objects.filter(request=payout.request).exclude(pk=payout.pk).get()
    assert (replacement.method, replacement.state, replacement.amount) == ("coupon", P.PENDING_APPROVAL, payout.amount)
    assert replacement.idempotency_key != payout.idempotency_key


def test_a_worker_killed_mid_call_is_re_driven_by_the_sweeper_and_pays_once(finance):
    payout = _approved(finance)
    assert services.payout_claim(payout_id=payout.pk)  # claimed, then the worker died
    # The gateway may or may not have been reached before it died; here it was.
    get_gateway().refund(idempotency_key=str(payout.idempotency_key), payment_reference="x", amount=payout.amount, currency="CNY")

    assert sweep_payouts() == 0  # not stale yet: a live worker may still be on it
    Payout.objects.filter(pk=payout.pk).update(processing_started_at=timezone.now() - timedelta(hours=1))
    assert sweep_payouts() == 1

    payout = _reload(payout)
    assert payout.state == P.SUCCEEDED
    assert len(_ledger(payout)) == 1
    assert sweep_payouts() == 0  # nothing left behind


def test_an_approved_payout_whose_task_was_lost_is_executed_by_the_sweeper(finance):
    payout = _approved(finance)
    Payout.objects.filter(pk=payout.pk).update(approved_at=timezone.now() - timedelta(hours=1))

    sweep_payouts()

    assert _reload(payout).state == P.SUCCEEDED
    assert len(_ledger(payout)) == 1


# --- the payout state machine, both ways -------------------------------------------------------


def _payout_in(state, finance) -> Payout:
    if state == P.PENDING_APPROVAL:
        return _pending()
    payout = _approved(finance)
    if state == P.APPROVED:
        return payout
    if state == P.PROCESSING:
        services.payout_claim(payout_id=payout.pk)
    elif state == P.SUCCEEDED:
        services.payout_execute(payout_id=payout.pk)
    elif state == P.FAILED:
        SimulatedGateway.set_mode("fail", calls=1)
        services.payout_execute(payout_id=payout.pk)
    elif state == P.OUTCOME_UNKNOWN:
        SimulatedGateway.set_mode("timeout", calls=1)
        services.payout_execute(payout_id=payout.pk)
    elif state == P.VOIDED:
        SimulatedGateway.set_mode("fail", calls=1)
        services.payout_execute(payout_id=payout.pk)
        services.payout_void(payout_id=payout.pk, actor=finance, note="customer took store credit", reissue_method="store_credit")
    assert _reload(payout).state == state
    return payout


PAYOUT_ACTIONS = {
    "approve": lambda p, f: services.payout_approve(payout_id=p.pk, actor=f),
    "void": lambda p, f: services.payout_void(payout_id=p.pk, actor=f, reissue_method="store_credit"),
    "retry": lambda p, f: services.payout_retry(payout_id=p.pk, actor=f),
}
PAYOUT_ALLOWED = {
    (P.PENDING_APPROVAL, "approve"): P.APPROVED,
    (P.PENDING_APPROVAL, "void"): P.VOIDED,
    (P.FAILED, "void"): P.VOIDED,
    (P.FAILED, "retry"): P.PROCESSING,
}
PAYOUT_PAIRS = [(s, a) for s in P.values for a in PAYOUT_ACTIONS]


@pytest.mark.parametrize(("state", "action"), PAYOUT_PAIRS, ids=[f"{s}-{a}" for s, a in PAYOUT_PAIRS])
def test_payout_transitions_follow_the_diagram(state, action, finance, django_capture_on_commit_callbacks):
    payout = _payout_in(state, finance)
    events = RefundEvent.objects.filter(payout=payout).count()

    with django_capture_on_commit_callbacks() as callbacks:
        if (state, action) in PAYOUT_ALLOWED:
            PAYOUT_ACTIONS[action](payout, finance)
        else:
            with pytest.raises(RefundNotAllowed):
                PAYOUT_ACTIONS[action](payout, finance)

    after = _reload(payout)
    if (state, action) in PAYOUT_ALLOWED:
        assert after.state == PAYOUT_ALLOWED[(state, action)]
        new = RefundEvent.objects.filter(payout=payout).order_by("pk")[events:]
        assert [(e.from_state, e.to_state, e.actor_user_id) for e in new] == [(state, after.state, finance.user.pk)]
    else:
        assert after.state == state
        assert RefundEvent.objects.filter(payout=payout).count() == events
        assert callbacks == []


def test_recording_a_late_result_for_a_payout_not_processing_changes_nothing(finance):
    payout = _payout_in(P.SUCCEEDED, finance)
    events = RefundEvent.objects.count()

    services.payout_record_result(payout_id=payout.pk, unknown="late timeout", actor=SYSTEM)
    services.payout_record_result(payout_id=payout.pk, declined="late decline", actor=SYSTEM)

    after = _reload(payout)
    assert (after.state, after.error) == (P.SUCCEEDED, "")
    assert RefundEvent.objects.count() == events


def test_bulk_approval_approves_what_it_may_and_reports_the_rest(finance, finance_user2, settings):
    from config.actors import Actor

    settings.REFUND_DESK = {**settings.REFUND_DESK, "PAYOUT_FOUR_EYES_ABOVE": "16.00"}
    small = [_pending() for _ in range(3)]
    big = _pending("18.00")
    voided = _payout_in(P.VOIDED, finance)

    result = services.payout_approve_bulk(payout_ids=[p.pk for p in [*small, big, voided]] + [999999], actor=finance)

    assert sorted(result.approved) == sorted(p.pk for p in small)
    assert result.first_approvals == [big.pk]
    assert result.skipped == {voided.pk: "is voided", 999999: "no such payout"}
    assert {_reload(p).state for p in small} == {P.APPROVED}
    assert {_reload(p).batch_id for p in small} == {result.batch.pk}
    assert _reload(big).state == P.PENDING_APPROVAL
    assert RefundEvent.objects.filter(payout__in=small, action="payout_approve").count() == 3

    again = services.payout_approve_bulk(payout_ids=[big.pk], actor=finance)
    assert again.skipped == {big.pk: "needs a second, different approver"}
    services.payout_approve_bulk(payout_ids=[big.pk], actor=Actor.for_user(finance_user2))
    assert _reload(big).state == P.APPROVED


def test_the_last_open_payout_is_not_voided_without_a_replacement(finance):
    payout = _pending()
    events_before = RefundEvent.objects.count()

    with pytest.raises(RefundNotAllowed, match="last open payout"):
        services.payout_void(payout_id=payout.pk, actor=finance)

    assert _reload(payout).state == P.PENDING_APPROVAL
    assert RefundEvent.objects.count() == events_before
    assert Payout.objects.filter(request=payout.request).count() == 1


def test_a_failed_payout_reissued_as_store_credit_completes_the_refund(finance, django_capture_on_commit_callbacks):
    payout = _pending(amount="42.50")
    SimulatedGateway.set_mode("fail", calls=1)
    with django_capture_on_commit_callbacks(execute=True):
        services.payout_approve(payout_id=payout.pk, actor=finance)
    assert _reload(payout).state == P.FAILED

    services.payout_void(payout_id=payout.pk, actor=finance, note="card closed", reissue_method="store_credit")

    replacement = Payout.objects.exclude(pk=payout.pk).get(request=payout.request)
    assert (_reload(payout).state, replacement.state, replacement.method, replacement.amount) == (
        P.VOIDED,
        P.PENDING_APPROVAL,
        "store_credit",
        D("42.50"),
    )
    assert RefundEvent.objects.filter(payout=replacement, action="payout_reissue").count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        services.payout_approve(payout_id=replacement.pk, actor=finance)
    refund = RefundRequest.objects.get(pk=payout.request_id)
    assert (refund.state, refund.amount_paid) == (RefundRequest.State.REFUNDED, D("42.50"))
    assert refund.customer.wallet_entries.get().amount == D("42.50")
    assert _ledger(payout) == []  # the declined card was never paid


def test_a_replacement_must_be_a_refund_method(finance):
    payout = _pending()

    with pytest.raises(RefundValidationError):
        services.payout_void(payout_id=payout.pk, actor=finance, reissue_method="cash")

    assert _reload(payout).state == P.PENDING_APPROVAL


# --- the set-based paths take their states from the declared transitions -----------------


def _snapshot(payout) -> tuple[dict, list]:
    row = Payout.objects.filter(pk=payout.pk).values().get()
    return row, list(RefundEvent.objects.filter(payout=payout).values_list("pk", flat=True))


def test_bulk_and_one_by_one_approval_leave_the_same_row_and_event(finance):
    one, bulk = _pending(), _pending()

    services.payout_approve(payout_id=one.pk, actor=finance)
    result = services.payout_approve_bulk(payout_ids=[bulk.pk], actor=finance)

    assert result.approved == [bulk.pk]
    fields = ["state", "approved_by_id", "first_approved_by_id", "attempts", "processing_started_at"]
    assert Payout.objects.filter(pk=bulk.pk).values(*fields).get() == Payout.objects.filter(pk=one.pk).values(*fields).get()
    assert _reload(bulk).approved_at is not None and _reload(one).approved_at is not None

    def event(p):
        return (
            RefundEvent.objects.filter(payout=p, action="payout_approve")
            .values("from_state", "to_state", "actor_kind", "actor_user_id", "public")
            .get()
        )

    assert (
        event(bulk)
        == event(one)
        == {
            "from_state": P.PENDING_APPROVAL,
            "to_state": P.APPROVED,
            "actor_kind": RefundEvent.ActorKind.USER,
            "actor_user_id": finance.user.pk,
            "public": False,
        }
    )


NOT_APPROVABLE = [s for s in P.values if s not in sources_of(Payout.approve)]


@pytest.mark.parametrize("state", NOT_APPROVABLE)
def test_bulk_approval_leaves_every_state_approve_does_not_start_from(state, finance, django_capture_on_commit_callbacks):
    payout = _payout_in(state, finance)
    before = _snapshot(payout)
    batches = PayoutBatch.objects.count()

    with django_capture_on_commit_callbacks() as callbacks:
        result = services.payout_approve_bulk(payout_ids=[payout.pk], actor=finance)

    assert (result.approved, result.first_approvals, result.skipped) == ([], [], {payout.pk: f"is {state}"})
    assert _snapshot(payout) == before
    assert PayoutBatch.objects.count() == batches and callbacks == []


NOT_CLAIMABLE = [s for s in P.values if s not in sources_of(Payout.start)]


@pytest.mark.parametrize("state", NOT_CLAIMABLE)
def test_a_claim_leaves_every_state_start_does_not_start_from(state, finance):
    payout = _payout_in(state, finance)
    before = _snapshot(payout)

    assert services.payout_claim(payout_id=payout.pk) is False
    assert _snapshot(payout) == before


def test_a_claim_moves_an_approved_payout_as_payout_start_would_and_records_it(finance):
    payout = _approved(finance)
    expected = Payout.objects.get(pk=payout.pk)
    expected.start(at=timezone.now())

    assert services.payout_claim(payout_id=payout.pk) is True

    after = _reload(payout)
    assert (after.state, after.attempts) == (expected.state, expected.attempts) == (P.PROCESSING, 1)
    assert after.processing_started_at is not None
    claim = RefundEvent.objects.filter(payout=payout).latest("pk")
    assert (claim.action, claim.from_state, claim.to_state, claim.actor_kind) == (
        "payout_execute",
        P.APPROVED,
        P.PROCESSING,
        RefundEvent.ActorKind.SYSTEM,
    )


def test_a_gateway_answer_naming_the_customer_is_stored_masked(finance):
    payout = _payout_in(P.PROCESSING, finance)

    services.payout_record_result(
        payout_id=payout.pk, declined="account of +8613912345678 (li@example.com) is closed", actor=SYSTEM
    )

    after = _reload(payout)
    assert after.state == P.FAILED
    assert after.error == "account of +86 139****5678 (l***@example.com) is closed"
    assert "13912345678" not in RefundEvent.objects.filter(payout=payout).order_by("-pk").first().note
