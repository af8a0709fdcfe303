"""The lifecycle table of spec/lifecycle.md, proved through the services.

Every source state is reached through `refunds.services` (see `journeys.py`), then every
service is tried on it. What the table allows moves the request and leaves one event per
state change, with its actor; what it does not allow raises a domain error and leaves the
request, its events, the outbox, the order's holds and the task queue exactly as they were.
"""

from decimal import Decimal

import pytest
from django.utils import translation

from config.actors import SYSTEM, Actor
from notifications.models import Notification
from refunds import services
from refunds.errors import ActionForbidden, NotFound, RefundNotAllowed, RefundValidationError
from refunds.models import Payout, RefundEvent, RefundRequest
from tests.factories import ChannelFactory, UserFactory
from tests.refunds import journeys
from tests.refunds.journeys import BUILDERS, Cast, order_of

pytestmark = pytest.mark.django_db
S = RefundRequest.State


@pytest.fixture
def cast(support, warehouse, finance):
    return Cast(support=support, warehouse=warehouse, finance=finance)


# --- the services, each called by the actor the table names --------------------------------

ACTIONS = {
    "evaluate": lambda rid, c: services.refund_evaluate(refund_id=rid, actor=SYSTEM),
    "approve": lambda rid, c: services.refund_approve(refund_id=rid, actor=c.support, note="ok"),
    "reject": lambda rid, c: services.refund_reject(refund_id=rid, actor=c.support, reason="outside policy"),
    "ask_customer": lambda rid, c: services.refund_ask_customer(refund_id=rid, actor=c.support, question="Which size?"),
    "offer_alternative": lambda rid, c: services.refund_offer_alternative(
        refund_id=rid, actor=c.support, alternative={"kind": "voucher", "description": "A 10.00 voucher instead?"}
    ),
    "accept_alternative": lambda rid, c: services.refund_accept_alternative(refund_id=rid, actor=c.channel(rid)),
    "decline_alternative": lambda rid, c: services.refund_decline_alternative(refund_id=rid, actor=c.channel(rid)),
    "resume": lambda rid, c: services.refund_resume(refund_id=rid, actor=c.channel(rid), message="Size M, thanks"),
    "withdraw": lambda rid, c: services.refund_withdraw(refund_id=rid, actor=c.channel(rid)),
    "return_ship": lambda rid, c: services.return_ship(
        refund_id=rid, actor=c.channel(rid), carrier="yto", tracking_number=f"YT{rid:09d}"
    ),
    "return_tracking_seen": lambda rid, c: services.return_tracking_seen(refund_id=rid, actor=SYSTEM),
    "receive": lambda rid, c: services.return_receive(code=_scan_code(rid), actor=c.warehouse),
    "inspect": lambda rid, c: services.return_inspect(refund_id=rid, actor=c.warehouse, grade="opened", disposition="restock"),
    "expire": lambda rid, c: _expire_after_deadline(rid),
}


def _scan_code(refund_id: int) -> str:
    parcel = getattr(RefundRequest.objects.get(pk=refund_id), "return_parcel", None)
    return parcel.return_code if parcel else "999999999999"


def _expire_after_deadline(refund_id: int):
    journeys._pass_return_deadline(refund_id)
    return services.refund_expire(refund_id=refund_id, actor=SYSTEM)


# (source, service) → the states the request passes through, in order. `approved` is
# transient: the service that approves routes the request on in the same transaction.
ALLOWED = {
    ("submitted", "evaluate"): ["approved", "awaiting_return"],
    ("submitted", "withdraw"): ["withdrawn"],
    ("under_review", "approve"): ["approved", "awaiting_return"],
    ("under_review", "reject"): ["rejected"],
    ("under_review", "ask_customer"): ["awaiting_customer"],
    ("under_review", "offer_alternative"): ["awaiting_customer"],
    ("under_review", "withdraw"): ["withdrawn"],
    ("awaiting_customer/asked", "resume"): ["under_review"],
    ("awaiting_customer/asked", "withdraw"): ["withdrawn"],
    ("awaiting_customer/offer", "accept_alternative"): ["resolved"],
    ("awaiting_customer/offer", "decline_alternative"): ["under_review"],
    ("awaiting_customer/offer", "withdraw"): ["withdrawn"],
    ("awaiting_return", "return_ship"): ["return_in_transit"],
    ("awaiting_return", "return_tracking_seen"): ["return_in_transit"],
    ("awaiting_return", "receive"): ["received"],
    ("awaiting_return", "expire"): ["cancelled"],
    ("awaiting_return", "withdraw"): ["withdrawn"],
    ("return_in_transit", "receive"): ["received"],
    ("received", "inspect"): ["ready_for_payout"],
}

# Services run by tasks and webhooks answer an out-of-date call with a no-op (a task may run
# twice, a carrier may replay a scan): nothing changes, nothing is recorded, nothing raised.
IDEMPOTENT_NOOPS = {"evaluate", "return_tracking_seen"}

# Who each allowed step is recorded against (the first event; follow-ups are `system`).
ACTOR_KIND = {
    "evaluate": "system",
    "return_tracking_seen": "system",
    "expire": "system",
    "approve": "user",
    "reject": "user",
    "ask_customer": "user",
    "offer_alternative": "user",
    "receive": "user",
    "inspect": "user",
}

PAIRS = [(state, action) for state in BUILDERS for action in ACTIONS]


def _snapshot(refund_id: int) -> dict:
    refund = RefundRequest.objects.select_related("order").get(pk=refund_id)
    return {
        "state": refund.state,
        "events": RefundEvent.objects.filter(request_id=refund_id).count(),
        "all_events": RefundEvent.objects.count(),
        "notifications": Notification.objects.count(),
        "payouts": Payout.objects.filter(request_id=refund_id).count(),
        "order_held": refund.order.held_total,
        "order_refunded": refund.order.refunded_total,
        "lines_held": sorted(refund.order.lines.values_list("held_quantity", "held_amount")),
        "updated_at": refund.updated_at,
    }


@pytest.mark.parametrize(
    ("source", "action"), [p for p in PAIRS if p in ALLOWED], ids=[f"{s}-{a}" for s, a in PAIRS if (s, a) in ALLOWED]
)
def test_every_allowed_transition_is_reachable_through_its_service(source, action, cast):
    refund_id = BUILDERS[source](cast)
    before = RefundEvent.objects.filter(request_id=refund_id).count()

    ACTIONS[action](refund_id, cast)

    path = ALLOWED[(source, action)]
    assert journeys.state_of(refund_id) == path[-1]
    new = list(RefundEvent.objects.filter(request_id=refund_id, payout__isnull=True).order_by("pk")[before:])
    # One event per state change, chained from the source state.
    assert [(e.from_state, e.to_state) for e in new] == list(zip([source.split("/")[0], *path[:-1]], path, strict=True))
    first = new[0]
    expected_kind = ACTOR_KIND.get(action, "channel")
    assert first.actor_kind == expected_kind
    if expected_kind == "user":
        assert first.actor_user_id is not None and first.actor_channel_id is None
    elif expected_kind == "channel":
        assert first.actor_channel_id == RefundRequest.objects.get(pk=refund_id).channel_id
    else:
        assert first.actor_user_id is None and first.actor_channel_id is None
    assert all(e.actor_kind == "system" for e in new[1:])


@pytest.mark.parametrize("source", list(BUILDERS))
def test_every_transition_the_table_does_not_allow_is_refused_and_changes_nothing(
    source, cast, django_capture_on_commit_callbacks
):
    # One request per source state takes every refused service in turn: since a refusal
    # changes nothing, each attempt starts from the same state as the first.
    refund_id = BUILDERS[source](cast)
    before = _snapshot(refund_id)
    refused = [a for a in ACTIONS if (source, a) not in ALLOWED]
    assert refused

    for action in refused:
        with django_capture_on_commit_callbacks() as callbacks:
            if action in IDEMPOTENT_NOOPS:
                ACTIONS[action](refund_id, cast)
            else:
                parcel = hasattr(RefundRequest.objects.get(pk=refund_id), "return_parcel")
                expected = NotFound if action == "receive" and not parcel else RefundNotAllowed
                with pytest.raises(expected) as exc:
                    ACTIONS[action](refund_id, cast)
                assert exc.value.message, action  # a sentence a person can read
        assert _snapshot(refund_id) == before, action
        assert callbacks == [], action  # no task, no notification send queued


def test_the_table_is_covered_both_ways():
    """Guard against a table edit that silently drops a row from the tests above."""
    states = {s.split("/")[0] for s in BUILDERS}
    assert states == set(S.values) - {S.APPROVED}
    assert {a for _, a in ALLOWED} <= set(ACTIONS)
    assert len(PAIRS) == len(BUILDERS) * len(ACTIONS)


# --- the evaluation's other outcomes ----------------------------------------------------------


def test_evaluate_routes_a_refund_only_request_through_approved_to_ready_for_payout(cast):
    refund_id = journeys.evaluated(order_of("15.00"), kind="refund_only")

    refund = RefundRequest.objects.get(pk=refund_id)
    assert refund.state == S.READY_FOR_PAYOUT
    assert list(refund.events.values_list("from_state", "to_state", "actor_kind").order_by("pk")) == [
        ("", "submitted", "channel"),
        ("submitted", "approved", "system"),
        ("approved", "ready_for_payout", "system"),
    ]
    payout = refund.payouts.get()
    assert (payout.state, payout.amount) == (Payout.State.PENDING_APPROVAL, Decimal("15.00"))
    assert not hasattr(refund, "return_parcel")


def test_evaluate_rejects_a_request_outside_the_return_window_and_releases_the_hold(cast):
    from datetime import timedelta

    from django.utils import timezone

    order = order_of(placed_at=timezone.now() - timedelta(days=60))
    refund_id = journeys.evaluated(order)

    refund = RefundRequest.objects.get(pk=refund_id)
    order.refresh_from_db()
    assert refund.state == S.REJECTED
    assert "window is 30" in refund.decision_reason
    assert refund.events.filter(action="reject_automatically", actor_kind="system").count() == 1
    assert order.held_total == Decimal("0.00")
    assert list(order.lines.values_list("held_quantity", flat=True)) == [0]


def test_evaluate_offers_an_alternative_for_a_moving_parcel(cast):
    refund_id = journeys.build_awaiting_customer_offer(cast)

    refund = RefundRequest.objects.get(pk=refund_id)
    assert refund.state == S.AWAITING_CUSTOMER
    assert refund.alternative["kind"] == "expedite"
    assert refund.events.filter(action="offer_alternative", actor_kind="system").count() == 1


def test_a_failed_inspection_goes_back_to_support_with_the_reason(cast):
    refund_id = journeys.build_received(cast)

    # The warehouse's screen may be in Chinese; the reason support and the customer read is stored in English.
    with translation.override("zh-hans"):
        services.return_inspect(refund_id=refund_id, actor=cast.warehouse, grade="used", disposition="dispose", note="worn")

    refund = RefundRequest.objects.get(pk=refund_id)
    assert refund.state == S.UNDER_REVIEW
    assert refund.escalation_reason == "inspection failed: used — worn"
    assert not refund.payouts.exists()


def test_all_payouts_succeeded_moves_ready_for_payout_to_refunded_as_system(cast):
    refund_id = journeys.build_ready_for_payout(cast)
    payout = Payout.objects.get(request_id=refund_id)

    services.payout_approve(payout_id=payout.pk, actor=cast.finance)
    assert journeys.state_of(refund_id) == S.READY_FOR_PAYOUT  # approved, not yet paid
    services.payout_execute(payout_id=payout.pk)

    last = RefundEvent.objects.filter(request_id=refund_id, payout__isnull=True).order_by("pk").last()
    assert (last.from_state, last.to_state, last.actor_kind) == ("ready_for_payout", "refunded", "system")
    assert list(RefundEvent.objects.filter(payout=payout).order_by("pk").values_list("action", "from_state", "to_state")) == [
        ("payout_approve", "pending_approval", "approved"),
        ("payout_execute", "approved", "processing"),
        ("payout_succeeded", "processing", "succeeded"),
    ]


def test_a_return_can_not_expire_before_its_deadline(cast):
    refund_id = journeys.build_awaiting_return(cast)
    before = _snapshot(refund_id)

    with pytest.raises(RefundNotAllowed, match="can still be returned until"):
        services.refund_expire(refund_id=refund_id, actor=SYSTEM)

    assert _snapshot(refund_id) == before


# --- roles -----------------------------------------------------------------------------------


def _refused(call, refund_id, error=ActionForbidden):
    before = _snapshot(refund_id)
    with pytest.raises(error):
        call()
    assert _snapshot(refund_id) == before


def test_warehouse_can_not_approve_and_support_can_not_receive(cast):
    under_review = journeys.build_under_review(cast)
    awaiting = journeys.build_awaiting_return(cast)

    _refused(lambda: services.refund_approve(refund_id=under_review, actor=cast.warehouse), under_review)
    _refused(lambda: services.refund_reject(refund_id=under_review, actor=cast.finance, reason="no"), under_review)
    _refused(lambda: services.return_receive(code=journeys.return_code(awaiting), actor=cast.support), awaiting)
    received = journeys.build_received(cast)
    _refused(
        lambda: services.return_inspect(refund_id=received, actor=cast.support, grade="unopened", disposition="restock"),
        received,
    )


def test_a_channel_and_the_system_can_not_review(cast):
    refund_id = journeys.build_under_review(cast)

    _refused(lambda: services.refund_approve(refund_id=refund_id, actor=cast.channel(refund_id)), refund_id)
    _refused(lambda: services.refund_approve(refund_id=refund_id, actor=SYSTEM), refund_id)
    _refused(lambda: services.refund_evaluate(refund_id=refund_id, actor=cast.support), refund_id)


def test_a_channel_can_not_see_or_act_on_another_channels_request(cast):
    stranger = Actor.for_channel(ChannelFactory(name="someone-else"))
    offered = journeys.build_awaiting_customer_offer(cast)
    awaiting = journeys.build_awaiting_return(cast)

    _refused(lambda: services.refund_withdraw(refund_id=offered, actor=stranger), offered, NotFound)
    _refused(lambda: services.refund_accept_alternative(refund_id=offered, actor=stranger), offered, NotFound)
    _refused(
        lambda: services.return_ship(refund_id=awaiting, actor=stranger, carrier="sf", tracking_number="X1"), awaiting, NotFound
    )


def test_staff_without_a_role_can_do_nothing(cast):
    nobody = Actor.for_user(UserFactory(username="no-role"))
    refund_id = journeys.build_under_review(cast)

    _refused(lambda: services.refund_approve(refund_id=refund_id, actor=nobody), refund_id)
    _refused(lambda: services.refund_withdraw(refund_id=refund_id, actor=nobody), refund_id)


def test_a_watchlisted_customer_needs_two_different_reviewers(cast, support_user2, risk_user):
    from risk.services import watchlist_add

    order = order_of("15.00")  # would pass every other rule
    watchlist_add(customer_id=order.customer_id, actor=Actor.for_user(risk_user), note="chargebacks elsewhere")
    refund_id = journeys.evaluated(order)
    refund = RefundRequest.objects.get(pk=refund_id)
    assert (refund.state, refund.requires_second_review) == (S.UNDER_REVIEW, True)

    services.refund_approve(refund_id=refund_id, actor=cast.support)
    refund.refresh_from_db()
    assert refund.state == S.UNDER_REVIEW  # a first approval is not a decision
    assert refund.first_approved_by == cast.support.user
    first = refund.events.order_by("pk").last()
    assert (first.action, first.from_state, first.to_state) == ("first_approval", "under_review", "under_review")

    _refused(lambda: services.refund_approve(refund_id=refund_id, actor=cast.support), refund_id)

    services.refund_approve(refund_id=refund_id, actor=Actor.for_user(support_user2))
    refund.refresh_from_db()
    assert refund.approved_by == support_user2
    assert refund.state == S.READY_FOR_PAYOUT  # keep-it amount: no return


def test_the_person_who_approved_a_request_can_not_approve_its_payout(cast, support_user):
    from django.contrib.auth.models import Group

    support_user.groups.add(Group.objects.get(name="finance"))
    both = Actor.for_user(type(support_user).objects.get(pk=support_user.pk))  # fresh permission cache
    refund_id = journeys.evaluated(order_of("15.00"), reason="quality_issue")
    services.refund_approve(refund_id=refund_id, actor=both)
    payout = Payout.objects.get(request_id=refund_id)

    with pytest.raises(ActionForbidden, match="may not approve its payout"):
        services.payout_approve(payout_id=payout.pk, actor=both)
    payout.refresh_from_db()
    assert payout.state == Payout.State.PENDING_APPROVAL
    assert not RefundEvent.objects.filter(payout=payout).exists()

    services.payout_approve(payout_id=payout.pk, actor=cast.finance)
    payout.refresh_from_db()
    assert payout.state != Payout.State.PENDING_APPROVAL


def test_a_payout_above_the_limit_needs_two_different_finance_approvers(cast, finance_user2, settings):
    settings.REFUND_DESK = {**settings.REFUND_DESK, "PAYOUT_FOUR_EYES_ABOVE": "40.00"}
    refund_id = journeys.build_ready_for_payout(cast)  # 50.00
    payout = Payout.objects.get(request_id=refund_id)

    services.payout_approve(payout_id=payout.pk, actor=cast.finance)
    payout.refresh_from_db()
    assert payout.state == Payout.State.PENDING_APPROVAL
    assert payout.first_approved_by == cast.finance.user
    events = RefundEvent.objects.filter(payout=payout).count()

    with pytest.raises(ActionForbidden, match="second, different approver"):
        services.payout_approve(payout_id=payout.pk, actor=cast.finance)
    payout.refresh_from_db()
    assert payout.state == Payout.State.PENDING_APPROVAL
    assert RefundEvent.objects.filter(payout=payout).count() == events

    services.payout_approve(payout_id=payout.pk, actor=Actor.for_user(finance_user2))
    payout.refresh_from_db()
    assert payout.approved_by == finance_user2


def test_support_can_not_approve_payouts_and_finance_can_not_retry_what_did_not_fail(cast):
    refund_id = journeys.build_ready_for_payout(cast)
    payout = Payout.objects.get(request_id=refund_id)

    with pytest.raises(ActionForbidden):
        services.payout_approve(payout_id=payout.pk, actor=cast.support)
    with pytest.raises(RefundNotAllowed):
        services.payout_retry(payout_id=payout.pk, actor=cast.finance)
    payout.refresh_from_db()
    assert payout.state == Payout.State.PENDING_APPROVAL
    assert not RefundEvent.objects.filter(payout=payout).exists()


def test_input_errors_change_nothing(cast):
    refund_id = journeys.build_under_review(cast)

    _refused(
        lambda: services.refund_reject(refund_id=refund_id, actor=cast.support, reason="  "), refund_id, RefundValidationError
    )
    _refused(
        lambda: services.refund_ask_customer(refund_id=refund_id, actor=cast.support, question=""),
        refund_id,
        RefundValidationError,
    )
