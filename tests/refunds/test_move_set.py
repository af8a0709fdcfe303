"""Set-based moves: `move_set` runs a declared transition over rows in one UPDATE, and the
machines refuse any other write of their state.

The set path and the row path of each transition declared `SET_BASED` must leave the same
row; rows in a state the transition does not start from must be left exactly as they were.
"""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from django_fsm import FSMFieldMixin

from refunds.models import Payout, RefundRequest, move_set, sources_of
from tests.factories import PayoutFactory, RefundRequestFactory, UserFactory

pytestmark = pytest.mark.django_db
P = Payout.State
AT = timezone.now() - timedelta(hours=1)

# Arguments for each transition that may run over a set. A transition newly declared
# SET_BASED fails `test_every_set_based_transition_has_a_sample` until it has its line here.
SAMPLES = {
    (Payout, "approve"): lambda: {"at": AT, "by": UserFactory(username="fin-sample")},
    (Payout, "start"): lambda: {"at": AT},
    (Payout, "void"): lambda: {"at": AT},
}
IGNORED = {"id", "idempotency_key", "created_at", "updated_at"}


def _set_based(model) -> set[str]:
    (field,) = [f for f in model._meta.concrete_fields if isinstance(f, FSMFieldMixin)]
    return {t.name for t in field.get_all_transitions(model) if t.custom.get("set_based")}


def _row(payout) -> dict:
    return {k: v for k, v in Payout.objects.filter(pk=payout.pk).values().get().items() if k not in IGNORED}


def test_every_set_based_transition_has_a_sample():
    assert {(model, name) for model in (RefundRequest, Payout) for name in _set_based(model)} == set(SAMPLES)


CASES = [(model, name, source) for (model, name) in SAMPLES for source in sources_of(getattr(model, name))]


@pytest.mark.parametrize(("model", "name", "source"), CASES, ids=[f"{m.__name__}.{n}-from-{s}" for m, n, s in CASES])
def test_over_a_set_a_transition_leaves_the_row_its_row_path_leaves(model, name, source):
    kwargs = SAMPLES[(model, name)]()
    request = RefundRequestFactory(state=RefundRequest.State.READY_FOR_PAYOUT)
    one, twin = (PayoutFactory(request=request, state=source, attempts=2, error="gateway said no") for _ in range(2))
    assert _row(one) == _row(twin)
    twin_updated_at = Payout.objects.get(pk=twin.pk).updated_at

    row = Payout.objects.get(pk=one.pk)
    getattr(row, name)(**kwargs)
    row.save()
    moved = move_set(Payout.objects.filter(pk=twin.pk), getattr(Payout, name), **kwargs)

    assert moved == 1
    assert _row(twin) == _row(one)
    assert _row(twin)["state"] != source
    assert Payout.objects.get(pk=twin.pk).updated_at > twin_updated_at


def test_only_rows_in_a_state_the_transition_starts_from_move():
    request = RefundRequestFactory(state=RefundRequest.State.READY_FOR_PAYOUT)
    payouts = {state: PayoutFactory(request=request, state=state, attempts=1) for state in P.values}
    before = {state: _row(p) for state, p in payouts.items()}

    moved = move_set(Payout.objects.filter(request=request), Payout.start, at=AT)

    assert moved == 1
    after = _row(payouts[P.APPROVED])
    assert (after["state"], after["processing_started_at"], after["attempts"]) == (P.PROCESSING, AT, 2)
    assert {s: _row(p) for s, p in payouts.items() if s != P.APPROVED} == {s: r for s, r in before.items() if s != P.APPROVED}


def test_a_second_claim_of_the_same_row_moves_nothing():
    payout = PayoutFactory(state=P.APPROVED)

    assert move_set(Payout.objects.filter(pk=payout.pk), Payout.start, at=AT) == 1
    first = _row(payout)
    assert move_set(Payout.objects.filter(pk=payout.pk), Payout.start, at=AT + timedelta(minutes=1)) == 0
    assert _row(payout) == first


def test_also_sets_columns_the_transition_does_not_and_may_not_override_its_own():
    payout = PayoutFactory(state=P.PENDING_APPROVAL)
    user = UserFactory(username="fin-also")
    before = _row(payout)

    with pytest.raises(ValueError, match="sets approved_at itself"):
        move_set(Payout.objects.filter(pk=payout.pk), Payout.approve, at=AT, by=user, also={"approved_at": timezone.now()})
    assert _row(payout) == before

    move_set(Payout.objects.filter(pk=payout.pk), Payout.approve, at=AT, by=user, also={"error": "batch note"})
    after = _row(payout)
    assert (after["state"], after["approved_by_id"], after["error"]) == (P.APPROVED, user.pk, "batch note")


@pytest.mark.parametrize(
    ("transition", "error", "match"),
    [
        (Payout.retry, ValueError, "not declared custom=SET_BASED"),
        (Payout.succeed, ValueError, "not declared custom=SET_BASED"),
        (RefundRequest.approve, TypeError, "not a transition of Payout"),
        (Payout.record_first_approval, TypeError, "not a django-fsm transition"),
    ],
    ids=["conditions, not set-based", "not set-based", "another machine's", "not a transition"],
)
def test_a_transition_not_declared_for_a_set_is_refused_and_nothing_moves(transition, error, match):
    payouts = [PayoutFactory(state=state) for state in (P.FAILED, P.PROCESSING, P.PENDING_APPROVAL)]
    before = [_row(p) for p in payouts]

    with pytest.raises(error, match=match):
        move_set(Payout.objects.filter(pk__in=[p.pk for p in payouts]), transition, at=AT)

    assert [_row(p) for p in payouts] == before


def test_a_bare_update_of_the_state_is_refused_for_both_machines_and_changes_nothing():
    payout = PayoutFactory(state=P.PENDING_APPROVAL)
    refund = payout.request
    payout_before, refund_state = _row(payout), RefundRequest.objects.get(pk=refund.pk).state

    with pytest.raises(TypeError, match="Payout.state changes only through a declared transition"):
        Payout.objects.filter(pk=payout.pk).update(state=P.SUCCEEDED)
    with pytest.raises(TypeError, match="Payout.state changes only through a declared transition"):
        refund.payouts.update(state=P.SUCCEEDED, approved_at=AT)
    with pytest.raises(TypeError, match="RefundRequest.state changes only through a declared transition"):
        RefundRequest.objects.filter(pk=refund.pk).update(state=RefundRequest.State.REFUNDED)
    payout.__dict__["state"] = P.SUCCEEDED  # protected=True: only bulk_update could write it
    with pytest.raises(TypeError, match="Payout.state changes only through a declared transition"), transaction.atomic():
        Payout.objects.bulk_update([payout], ["state"])  # its own atomic block breaks with it

    assert _row(payout) == payout_before
    assert RefundRequest.objects.get(pk=refund.pk).state == refund_state
    # Other columns are updated as ever.
    assert Payout.objects.filter(pk=payout.pk).update(error="noted") == 1
