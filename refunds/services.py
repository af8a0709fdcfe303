"""Every change of a refund request's or payout's state happens here, and only here.

Each service is keyword-only and takes the `actor`. Inside one transaction it locks the rows
it changes (always in the order order → order lines → request → payout, by pk, so two
services never deadlock), checks who may do it, calls the django-fsm transition, saves with
`update_fields`, writes one `RefundEvent`, and registers side effects (tasks, outbox rows)
to run after commit. A refused call raises a `RefundError` subclass and changes nothing.
"""

import logging
import secrets
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, DecimalField, F, IntegerField, Q, Value, When
from django.db.models.functions import Round
from django.utils import timezone
from django_fsm import TransitionNotAllowed

from config.q2 import enqueue_on_commit, task_row
from notifications.services import notify_customer, notify_staff
from orders.actors import SYSTEM, Actor
from orders.models import Order, OrderLine, Shipment, TrackingEvent
from refunds import intake, rules
from refunds.errors import (
    ActionForbidden,
    IdempotencyConflict,
    NotFound,
    RefundNotAllowed,
    RefundValidationError,
)
from refunds.gateways import (
    GatewayDeclined,
    GatewayResult,
    GatewayTimeout,
    GatewayUnavailable,
    RefundStatus,
    StatusAnswer,
    get_gateway,
)
from refunds.models import (
    Coupon,
    Inspection,
    Payout,
    PayoutBatch,
    Reason,
    RefundEvent,
    RefundLine,
    RefundMethod,
    RefundRequest,
    ReturnParcel,
    WalletEntry,
    stored_label,
)
from risk import services as risk

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")
State = RefundRequest.State

PERM_REVIEW = "refunds.review_refundrequest"
PERM_CREATE_FOR_CUSTOMER = "refunds.create_for_customer"
PERM_RECEIVE = "refunds.receive_return"
PERM_VERDICT = "refunds.record_verdict"
PERM_APPROVE_PAYOUT = "refunds.approve_payout"
PERM_RETRY_PAYOUT = "refunds.retry_payout"


def cents(expr):
    """Money arithmetic in SQL, rounded to the cent. SQLite stores decimals as binary floats,
    so 20.00 + 9.99 would become 29.990000000000002 and trip the check constraints; on
    PostgreSQL (numeric) the round changes nothing."""
    return Round(expr, 2)


# --- locking -----------------------------------------------------------------------------


def lock_refund(refund_id: int, *, with_lines: bool = False) -> RefundRequest:
    """Lock the request's order (and lines), then the request itself, in the fixed order."""
    order_id = RefundRequest.objects.filter(pk=refund_id).values_list("order_id", flat=True).first()
    if order_id is None:
        raise NotFound(f"Refund request {refund_id} does not exist.")
    # FOR NO KEY UPDATE, not FOR UPDATE: inserting a row that references a locked one (an
    # event, a payout) takes a KEY SHARE lock on it, which FOR UPDATE would block. A bulk
    # approval holding payouts while writing events for their requests then deadlocked with
    # any service holding one of those requests.
    order = Order.objects.select_for_update(no_key=True).get(pk=order_id)
    if with_lines:
        list(OrderLine.objects.select_for_update(no_key=True).filter(order_id=order_id).order_by("pk"))
    refund = RefundRequest.objects.select_for_update(no_key=True).select_related("customer", "channel").get(pk=refund_id)
    refund.order = order
    return refund


def lock_payout(payout_id: int) -> Payout:
    request_id = Payout.objects.filter(pk=payout_id).values_list("request_id", flat=True).first()
    if request_id is None:
        raise NotFound(f"Payout {payout_id} does not exist.")
    refund = lock_refund(request_id, with_lines=True)
    payout = Payout.objects.select_for_update(no_key=True).get(pk=payout_id)
    payout.request = refund
    return payout


# --- permissions and events --------------------------------------------------------------


def _require(actor: Actor, *, perm: str | None = None, channel_ok: bool = False, system_ok: bool = False, refund=None):
    if actor.is_system:
        if system_ok:
            return
        raise ActionForbidden("Only a person may do this.")
    if actor.is_channel:
        if not channel_ok:
            raise ActionForbidden("A channel may not do this.")
        if refund is not None and refund.channel_id != actor.channel.pk:
            raise NotFound("No such refund request for this channel.")
        return
    if perm is None or not actor.has_perm(perm):
        raise ActionForbidden(f"{actor.label} is not allowed to do this.")


def record_event(refund: RefundRequest, **kwargs) -> RefundEvent:
    """Write the event of an action on `refund` (see `build_event` for the arguments)."""
    event = build_event(refund, **kwargs)
    event.save(force_insert=True)
    return event


def build_event(
    refund: RefundRequest | None,
    *,
    actor: Actor,
    action: str,
    from_state: str,
    note: str = "",
    public: bool = True,
    payout: Payout | None = None,
    to_state: str | None = None,
) -> RefundEvent:
    """An unsaved event of an action on `refund`. `refund` may be None when `to_state` is
    given; the caller then sets the event's request before saving it."""
    return RefundEvent(
        request=refund,
        payout=payout,
        action=action,
        from_state=from_state,
        to_state=to_state if to_state is not None else (payout.state if payout else refund.state),
        actor_kind=(
            RefundEvent.ActorKind.USER
            if actor.is_user
            else RefundEvent.ActorKind.CHANNEL
            if actor.is_channel
            else RefundEvent.ActorKind.SYSTEM
        ),
        actor_user=actor.user,
        actor_channel=actor.channel,
        note=note,
        public=public,
    )


def _move(refund: RefundRequest, method: str, *, actor: Actor, note: str = "", public: bool = True, fields=(), **kwargs):
    """Run transition `method`, save what it touched, record the event."""
    before = refund.state
    try:
        getattr(refund, method)(at=timezone.now(), **kwargs)
    except TransitionNotAllowed:
        raise RefundNotAllowed(
            f"{refund.number} is {refund.get_state_display().lower()}; '{method}' is not allowed now."
        ) from None
    refund.save(update_fields=["state", "state_changed_at", "updated_at", *fields])
    record_event(refund, actor=actor, action=method, from_state=before, note=note, public=public)
    return refund


# --- intake ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineRequest:
    sku: str
    quantity: int


def refund_submit(
    *,
    actor: Actor,
    channel,
    idempotency_key: str,
    order_number: str,
    kind: str,
    reason: str,
    lines: list[LineRequest] | None = None,
    refund_method: str = RefundMethod.ORIGINAL_PAYMENT,
    customer_note: str = "",
    body_fingerprint: str = "",
    order_channel=None,
) -> tuple[RefundRequest, bool]:
    """Create a request for what is still refundable on the order; return (request, created).

    The same key with the same body returns the first request; with another body it raises
    IdempotencyConflict. What the request asks for is held on the order's lines at once, so
    two requests can never claim the same unit (held by row locks and check constraints).
    Evaluation runs in a task after commit, which first captures the evidence and the risk
    score. `order_channel` (staff only) is where the order was placed when the request arrives
    on another channel (support creating it on support_chat).
    """
    if actor.is_channel:
        _require(actor, channel_ok=True)
    else:
        _require(actor, perm=PERM_CREATE_FOR_CUSTOMER)
    if order_channel is not None and actor.is_channel:
        raise ActionForbidden("A channel may only refer to its own orders.")
    errors: dict[str, list[str]] = {}
    if not idempotency_key:
        errors["idempotency_key"] = ["An idempotency key is required."]
    # `x in Choices` compares with the members' values without building `.choices` (labels).
    if kind not in RefundRequest.Kind:
        errors["kind"] = [f"'{kind}' is not a kind of request; use one of {', '.join(RefundRequest.Kind.values)}."]
    if reason not in Reason:
        errors["reason"] = [f"'{reason}' is not a reason code; use one of {', '.join(Reason.values)}."]
    if refund_method not in RefundMethod:
        errors["refund_method"] = [f"'{refund_method}' is not a refund method; use one of {', '.join(RefundMethod.values)}."]
    if errors:
        raise RefundValidationError(errors)

    where = {"channel_id": (order_channel or channel).pk, "number": order_number}
    new = {
        "actor": actor,
        "channel": channel,
        "idempotency_key": idempotency_key,
        "kind": kind,
        "reason": reason,
        "lines": lines,
        "refund_method": refund_method,
        "customer_note": customer_note,
        "body_fingerprint": body_fingerprint,
    }
    if intake.ONE_STATEMENT:
        answer = _submit_in_one_statement(where, new)
        if answer is not None:
            return answer
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            # The key is looked up only under the order's lock: a concurrent POST with the same
            # key waits there and then finds the first one's request.
            order, order_lines = intake.lock_order(cursor, **where)
            existing = _find_idempotent(cursor, channel, idempotency_key, body_fingerprint)
            if existing:
                return existing, False
            if order is None:
                if intake.order_exists(cursor, **where):
                    raise RefundValidationError({"lines": ["Nothing is left to refund on this order."]})
                raise NotFound(f"Order {order_number} does not exist.")
            refund, taken, refund_lines, event = _new_request(order, order_lines, new)
            intake.hold(cursor, order=order, moves=taken)
            intake.insert(cursor, [refund])
            for obj in (*refund_lines, event):
                obj.request = refund
            intake.insert(cursor, refund_lines)
            intake.insert(cursor, [event])
            _submitted(refund, refund_lines, event)
    except IntegrityError:
        # The same key raced in on another order: the unique constraint decided.
        with connection.cursor() as cursor:
            existing = _find_idempotent(cursor, channel, idempotency_key, body_fingerprint)
        if existing:
            return existing, False
        raise
    return refund, True


def _submit_in_one_statement(where: dict, new: dict) -> tuple[RefundRequest, bool] | None:
    """Intake as one statement and no transaction of its own (PostgreSQL): see
    `intake.submit`. None means "take the locked path": the request names a SKU twice or a
    quantity below 1, or the statement refused it (no such order or SKU, more than is left,
    the key already used); that path says which, or answers the replay."""
    lines = new["lines"]
    if lines is not None and (
        not lines or len({line.sku for line in lines}) != len(lines) or any(line.quantity < 1 for line in lines)
    ):
        return None
    now = timezone.now()
    event = _submit_event(new, now)
    # On the ORM broker the statement writes the evaluation task too (None: enqueue after).
    task = task_row("refunds.tasks.refund_evaluate_submitted_task", new["channel"].pk, new["idempotency_key"])
    # Inside a caller's transaction the statement gets a savepoint, so that a refusal leaves
    # that transaction usable; on its own it commits by itself (autocommit).
    try:
        with transaction.atomic() if connection.in_atomic_block else nullcontext(), connection.cursor() as cursor:
            refund, refund_lines = intake.submit(
                cursor,
                **where,
                lines=None if lines is None else [(line.sku, line.quantity) for line in lines],
                refund=_request_values(new, now),
                event=event,
                task=task,
            )
    except IntegrityError:
        return None
    refund.channel = new["channel"]
    _submitted(refund, refund_lines, event, queued=task is not None)
    return refund, True


def _find_idempotent(cursor, channel, key: str, fingerprint: str) -> RefundRequest | None:
    match = intake.idempotent_match(cursor, channel_id=channel.pk, key=key)
    return _replay(match, fingerprint) if match is not None else None


def _replay(match: tuple[int, str], fingerprint: str) -> RefundRequest:
    """The request a repeated Idempotency-Key names, if the body is the same."""
    if match[1] != fingerprint:
        raise IdempotencyConflict("This Idempotency-Key was already used with a different body.")
    return RefundRequest.objects.get(pk=match[0])


def _request_values(new: dict, now) -> dict:
    """A new request's own values by attname, as the channel asked for it; the order's facts
    (order, customer, currency, amount) are the intake's to fill in, the rest are defaults."""
    return {
        "channel_id": new["channel"].pk,
        "idempotency_key": new["idempotency_key"],
        "body_fingerprint": new["body_fingerprint"],
        "kind": new["kind"],
        "requested_kind": new["kind"],
        "reason": new["reason"],
        "refund_method": new["refund_method"],
        "customer_note": new["customer_note"],
        "state_changed_at": now,
        "created_at": now,
        "updated_at": now,
    }


def _submit_event(new: dict, now) -> RefundEvent:
    """The `submit` event of a new request, not saved yet; its request is the caller's to set."""
    event = build_event(
        None,
        actor=new["actor"],
        action="submit",
        from_state="",
        note=new["customer_note"],
        to_state=RefundRequest.State.SUBMITTED,
    )
    event.at = now
    return event


def _unsaved_request(new: dict) -> tuple[RefundRequest, RefundEvent]:
    """The request as the channel asked for it and its `submit` event, not saved yet; the
    order's facts (order, customer, currency, amount) are the caller's to fill in."""
    now = timezone.now()
    refund = RefundRequest(**_request_values(new, now))
    refund.channel = new["channel"]
    event = _submit_event(new, now)
    event.request = refund
    return refund, event


def _new_request(
    order, order_lines, new: dict
) -> tuple[RefundRequest, list[tuple[OrderLine, int, Decimal]], list[RefundLine], RefundEvent]:
    """The request on `order`, what it takes from each order line, its lines and its
    `submit` event, none of them saved yet. Raises RefundValidationError for what is not
    left to refund."""
    wanted = _resolve_lines(order_lines, new["lines"])
    taken: list[tuple[OrderLine, int, Decimal]] = [(line, qty, _line_amount(line, qty)) for line, qty in wanted]
    amount = sum((a for _, _, a in taken), Decimal("0.00"))
    if amount <= 0:
        raise RefundValidationError({"lines": ["Nothing is left to refund on this order."]})
    if amount > order.refundable_total:
        raise RefundValidationError(
            {"lines": [f"{amount} is more than is left to refund on the order ({order.refundable_total})."]}
        )
    refund, event = _unsaved_request(new)
    refund.order, refund.customer_id, refund.currency, refund.amount_requested = order, order.customer_id, order.currency, amount
    refund_lines = [RefundLine(request=refund, order_line=line, quantity=qty, amount=a) for line, qty, a in taken]
    return refund, taken, refund_lines, event


def _submitted(refund: RefundRequest, refund_lines: list[RefundLine], event: RefundEvent, *, queued: bool = False) -> None:
    """After the request is written. Intake is only the write: the evidence, the risk score
    and the customer's receipt are the first thing the evaluation task does
    (`_capture_intake_facts`), still before any decision; one task, one broker write, which
    `queued` says the intake statement made already."""
    if not queued:
        enqueue_on_commit("refunds.tasks.refund_evaluate_task", refund.pk)
    # The caller answers from what was just written instead of reading it back.
    _set_loaded(refund, "lines", refund_lines)
    _set_loaded(refund, "events", [event])


def _set_loaded(instance, relation: str, objects: list) -> None:
    """Mark a reverse relation as loaded with `objects`, as `prefetch_related` would."""
    qs = getattr(instance, relation).all()
    qs._result_cache, qs._prefetch_done = list(objects), True
    instance.__dict__.setdefault("_prefetched_objects_cache", {})[relation] = qs


def _resolve_lines(order_lines: dict[str, OrderLine], lines: list[LineRequest] | None):
    if lines is None:
        wanted = [(line, line.refundable_quantity) for line in order_lines.values() if line.refundable_quantity > 0]
        if not wanted:
            raise RefundValidationError({"lines": ["Nothing is left to refund on this order."]})
        return wanted
    if not lines:
        raise RefundValidationError({"lines": ["Name at least one line, or leave lines out for the whole order."]})
    errors: list[str] = []
    wanted = []
    seen = set()
    for i, req in enumerate(lines):
        line = order_lines.get(req.sku)
        if line is None:
            errors.append(f"line {i + 1}: SKU '{req.sku}' is not on this order.")
        elif req.sku in seen:
            errors.append(f"line {i + 1}: SKU '{req.sku}' is named twice.")
        elif req.quantity <= 0:
            errors.append(f"line {i + 1}: quantity must be at least 1.")
        elif req.quantity > line.refundable_quantity:
            errors.append(f"line {i + 1}: {req.quantity} of '{req.sku}' asked, only {line.refundable_quantity} left to refund.")
        else:
            wanted.append((line, req.quantity))
        seen.add(req.sku)
    if errors:
        raise RefundValidationError({"lines": errors})
    return wanted


def _release_lines(moves: list[tuple[int, int, Decimal]], *, refunded: bool = False) -> None:
    """Take (order_line_id, quantity, amount) out of the lines' holds, and with `refunded` into
    their refunded figures, in one UPDATE for all lines, so the cost does not grow with the
    order's size. The caller holds the order and line locks. (Holds are taken at intake, by
    `refunds.intake`.)"""
    if not moves:
        return
    qty = Case(*[When(pk=pk, then=Value(q)) for pk, q, _ in moves], output_field=IntegerField())
    amt = Case(*[When(pk=pk, then=Value(a)) for pk, _, a in moves], output_field=DecimalField(max_digits=14, decimal_places=2))
    updates = {"held_quantity": F("held_quantity") - qty, "held_amount": cents(F("held_amount") - amt)}
    if refunded:
        updates |= {"refunded_quantity": F("refunded_quantity") + qty, "refunded_amount": cents(F("refunded_amount") + amt)}
    OrderLine.objects.filter(pk__in=[pk for pk, _, _ in moves]).update(**updates)


def _request_moves(refund: RefundRequest) -> list[tuple[int, int, Decimal]]:
    return list(refund.lines.values_list("order_line_id", "quantity", "amount"))


def _line_amount(line: OrderLine, qty: int) -> Decimal:
    """The money for `qty` units; the last units take whatever is left, so no cent is lost to rounding."""
    if qty == line.refundable_quantity:
        return line.line_total - line.refunded_amount - line.held_amount
    return (line.line_total * qty / line.quantity).quantize(CENT, rounding=ROUND_HALF_UP)


# --- evaluation --------------------------------------------------------------------------


def refund_evaluate(*, refund_id: int, actor: Actor = SYSTEM) -> RefundRequest:
    """Decide a submitted request by the channel's policy. A no-op unless still `submitted`.

    First captures what intake leaves to this task (evidence, risk score, the customer's
    receipt), under the same locks, so every decision sees them.
    """
    _require(actor, system_ok=True)
    with transaction.atomic():
        refund = lock_refund(refund_id, with_lines=True)
        if refund.state != State.SUBMITTED:
            return refund
        if not refund.evidence:
            _capture_intake_facts(refund)
        watchlisted = risk.is_watchlisted(customer=refund.customer)
        facts = rules.gather_facts(refund, risk_score=refund.risk_score or 0, watchlisted=watchlisted)
        decision = rules.evaluate(facts, rules.policy_for(refund.channel))
        if watchlisted and decision.outcome in (rules.PASS, rules.OFFER):
            # Never approved automatically, whatever the policy says.
            decision.outcome = rules.ESCALATE
            decision.trace.append(
                {"rule": "watchlist", "outcome": rules.ESCALATE, "sentence": "the customer is on the watch list"}
            )
        refund.rule_trace = decision.trace
        refund.kind = decision.kind
        refund.requires_second_review = decision.requires_second_review or watchlisted
        common = ["rule_trace", "kind", "requires_second_review", "evaluated_at"]
        if decision.outcome == rules.REJECT:
            reason = decision.sentences(rules.REJECT)
            _move(
                refund,
                "reject_automatically",
                actor=actor,
                reason=reason,
                note=reason,
                fields=[*common, "rejected_at", "decided_by", "decision_reason"],
            )
            notify_customer(refund=refund, event="refund_rejected", context={"reason": reason})
            _release_holds(refund)
        elif decision.outcome == rules.ESCALATE:
            reason = decision.sentences(rules.ESCALATE)
            _move(refund, "escalate", actor=actor, reason=reason, note=reason, fields=[*common, "escalation_reason"])
            notify_customer(refund=refund, event="refund_under_review")
            notify_staff(role="support", event="refund_escalated", refund=refund, context={"reason": reason})
        elif decision.outcome == rules.OFFER:
            _move(
                refund,
                "offer_alternative",
                actor=actor,
                alternative=decision.alternative,
                note=decision.sentences(rules.OFFER),
                fields=[*common, "alternative"],
            )
            notify_customer(refund=refund, event="alternative_offered", context=decision.alternative)
        else:
            _move(
                refund,
                "approve_automatically",
                actor=actor,
                note="all rules passed",
                fields=[*common, "approved_at", "amount_approved", "decided_by"],
            )
            notify_customer(refund=refund, event="refund_approved")
            _route_approved(refund, actor=actor)
    return refund


def _capture_intake_facts(refund: RefundRequest) -> None:
    """The evidence snapshot and risk assessment of a just-submitted request, and its receipt.

    Moved out of the request's transaction to keep `POST /api/v1/refunds/` a thin write; it
    runs milliseconds later, before evaluation, and the sweeper of requests left in
    `submitted` re-drives it when the task is lost. `assess_customer` queues the profile
    recompute itself.
    """
    from refunds.evidence import capture_evidence

    assessment = risk.assess_customer(customer=refund.customer, refund=refund)
    refund.risk_score, refund.risk_level, refund.risk_signals = assessment.score, assessment.level, assessment.signals
    refund.evidence = capture_evidence(refund)
    refund.save(update_fields=["risk_score", "risk_level", "risk_signals", "evidence"])
    notify_customer(refund=refund, event="request_received")


def _route_approved(refund: RefundRequest, *, actor: Actor) -> None:
    """approved → awaiting_return (with a return code) or → ready_for_payout (with payouts)."""
    if refund.kind == RefundRequest.Kind.RETURN_AND_REFUND:
        cfg = settings.REFUND_DESK
        parcel = ReturnParcel.objects.create(
            request=refund,
            return_code=_new_return_code(),
            address=cfg["RETURN_ADDRESS"],
            deadline=timezone.now() + timedelta(days=cfg["RETURN_WINDOW_DAYS"]),
        )
        _move(refund, "await_return", actor=SYSTEM, note=f"return code {parcel.return_code}")
        notify_customer(
            refund=refund,
            event="return_instructions",
            context={
                "return_code": parcel.return_code,
                "address": parcel.address,
                "deadline": parcel.deadline.date().isoformat(),
            },
        )
    else:
        _move(refund, "ready_without_return", actor=SYSTEM)
        _create_payouts(refund)


def _new_return_code() -> str:
    # Digits only: warehouse scanners type them as a keyboard and end with Enter.
    while True:
        code = "".join(secrets.choice("0123456789") for _ in range(12))
        if not ReturnParcel.objects.filter(return_code=code).exists():
            return code


def _create_payouts(refund: RefundRequest) -> None:
    Payout.objects.create(request=refund, method=refund.refund_method, amount=refund.amount_approved, currency=refund.currency)
    notify_staff(role="finance", event="ready_for_payout", refund=refund, context={"amount": str(refund.amount_approved)})


# --- support -----------------------------------------------------------------------------


def refund_approve(*, refund_id: int, actor: Actor, note: str = "") -> RefundRequest:
    """Approve a request under review. A watch-listed customer's needs two different people."""
    _require(actor, perm=PERM_REVIEW)
    with transaction.atomic():
        refund = lock_refund(refund_id)
        if refund.state != State.UNDER_REVIEW:
            raise RefundNotAllowed(
                f"{refund.number} is {refund.get_state_display().lower()}; only a request under review can be approved."
            )
        if refund.requires_second_review:
            if refund.first_approved_by_id is None:
                refund.record_first_approval(at=timezone.now(), by=actor.user)
                refund.save(update_fields=["first_approved_by", "first_approved_at", "updated_at"])
                record_event(refund, actor=actor, action="first_approval", from_state=refund.state, note=note, public=False)
                return refund
            if refund.first_approved_by_id == actor.user.pk:
                raise ActionForbidden("A second, different reviewer must approve this request.")
        _move(
            refund,
            "approve",
            actor=actor,
            by=actor.user,
            reason=note,
            note=note,
            fields=["approved_at", "approved_by", "amount_approved", "decided_by", "decision_reason"],
        )
        notify_customer(refund=refund, event="refund_approved")
        _route_approved(refund, actor=actor)
    return refund


def refund_reject(*, refund_id: int, actor: Actor, reason: str) -> RefundRequest:
    """Reject a request under review with a customer-facing reason; releases its hold."""
    _require(actor, perm=PERM_REVIEW)
    if not reason.strip():
        raise RefundValidationError({"reason": ["Give the customer a reason."]})
    with transaction.atomic():
        refund = lock_refund(refund_id, with_lines=True)
        _move(
            refund,
            "reject",
            actor=actor,
            by=actor.user,
            reason=reason,
            note=reason,
            fields=["rejected_at", "decided_by", "decision_reason"],
        )
        notify_customer(refund=refund, event="refund_rejected", context={"reason": reason})
        _release_holds(refund)
    return refund


def refund_ask_customer(*, refund_id: int, actor: Actor, question: str) -> RefundRequest:
    _require(actor, perm=PERM_REVIEW)
    if not question.strip():
        raise RefundValidationError({"question": ["Write the question for the customer."]})
    with transaction.atomic():
        refund = lock_refund(refund_id)
        _move(refund, "ask_customer", actor=actor, note=question, fields=["alternative"])
        notify_customer(refund=refund, event="more_information_needed", context={"question": question})
    return refund


def refund_offer_alternative(*, refund_id: int, actor: Actor, alternative: dict) -> RefundRequest:
    _require(actor, perm=PERM_REVIEW)
    if not alternative.get("description"):
        raise RefundValidationError({"alternative": ["Describe the alternative for the customer."]})
    with transaction.atomic():
        refund = lock_refund(refund_id)
        if refund.state != State.UNDER_REVIEW:
            raise RefundNotAllowed(
                f"{refund.number} is {refund.get_state_display().lower()}; an alternative is offered only under review."
            )
        _move(
            refund,
            "offer_alternative",
            actor=actor,
            alternative=alternative,
            note=alternative["description"],
            fields=["alternative"],
        )
        notify_customer(refund=refund, event="alternative_offered", context=alternative)
    return refund


def refund_accept_alternative(*, refund_id: int, actor: Actor) -> RefundRequest:
    """The customer takes the alternative: the request is resolved without money."""
    _require(actor, perm=PERM_REVIEW, channel_ok=True, refund=_peek(refund_id))
    with transaction.atomic():
        refund = lock_refund(refund_id, with_lines=True)
        if refund.state != State.AWAITING_CUSTOMER or not refund.alternative:
            raise RefundNotAllowed(f"{refund.number} has no alternative on offer.")
        _move(refund, "accept_alternative", actor=actor, fields=["resolved_at", "alternative"])
        if refund.alternative.get("kind") == "expedite":
            Shipment.objects.filter(order_id=refund.order_id, delivered_at__isnull=True).update(expedited_at=timezone.now())
        _release_holds(refund)
        notify_customer(refund=refund, event="alternative_accepted", context=refund.alternative)
    return refund


def refund_decline_alternative(*, refund_id: int, actor: Actor) -> RefundRequest:
    _require(actor, perm=PERM_REVIEW, channel_ok=True, refund=_peek(refund_id))
    with transaction.atomic():
        refund = lock_refund(refund_id)
        if refund.state != State.AWAITING_CUSTOMER or not refund.alternative:
            raise RefundNotAllowed(f"{refund.number} has no alternative on offer.")
        _move(refund, "decline_alternative", actor=actor, fields=["alternative"])
        notify_staff(
            role="support", event="refund_escalated", refund=refund, context={"reason": "the customer declined the alternative"}
        )
    return refund


def refund_resume(*, refund_id: int, actor: Actor, message: str = "") -> RefundRequest:
    """The customer answered (channel) or the wait timed out (system): back to review."""
    _require(actor, channel_ok=True, system_ok=True, perm=PERM_REVIEW, refund=_peek(refund_id))
    with transaction.atomic():
        refund = lock_refund(refund_id)
        if refund.state != State.AWAITING_CUSTOMER or refund.alternative:
            raise RefundNotAllowed(f"{refund.number} is not waiting for an answer from the customer.")
        _move(refund, "resume", actor=actor, note=message or ("no answer in time" if actor.is_system else ""))
        if message and refund.customer_id:
            from orders.models import CustomerMessage

            CustomerMessage.objects.create(
                customer_id=refund.customer_id, order_id=refund.order_id, channel=refund.channel, direction="in", body=message
            )
    return refund


def refund_withdraw(*, refund_id: int, actor: Actor, note: str = "") -> RefundRequest:
    _require(actor, perm=PERM_REVIEW, channel_ok=True, refund=_peek(refund_id))
    with transaction.atomic():
        refund = lock_refund(refund_id, with_lines=True)
        _move(refund, "withdraw", actor=actor, note=note, fields=["withdrawn_at"])
        _release_holds(refund)
        notify_customer(refund=refund, event="refund_withdrawn")
    return refund


def refund_record_verdict(*, refund_id: int, actor: Actor, verdict: str) -> RefundRequest:
    """A staff verdict on a decided escalated request (feeds the abuse figures)."""
    _require(actor, perm=PERM_VERDICT)
    if verdict not in RefundRequest.Verdict.values:
        raise RefundValidationError({"verdict": [f"Use one of {', '.join(RefundRequest.Verdict.values)}."]})
    with transaction.atomic():
        refund = lock_refund(refund_id)
        if not refund.escalation_reason or refund.state in (State.SUBMITTED, State.UNDER_REVIEW, State.AWAITING_CUSTOMER):
            raise RefundNotAllowed(f"{refund.number} is not a decided escalated request.")
        refund.verdict, refund.verdict_by, refund.verdict_at = verdict, actor.user, timezone.now()
        refund.save(update_fields=["verdict", "verdict_by", "verdict_at", "updated_at"])
        record_event(refund, actor=actor, action="verdict", from_state=refund.state, note=verdict, public=False)
        # "confirmed abuse" is a risk feature: the profile follows the verdict after commit.
        risk.customer_changed(customer_id=refund.customer_id)
    return refund


def _peek(refund_id: int) -> RefundRequest:
    refund = RefundRequest.objects.filter(pk=refund_id).only("id", "channel_id").first()
    if refund is None:
        raise NotFound(f"Refund request {refund_id} does not exist.")
    return refund


# --- returns -----------------------------------------------------------------------------


def return_ship(*, refund_id: int, actor: Actor, carrier: str, tracking_number: str) -> RefundRequest:
    """The customer's return parcel is on its way (channel), or its tracking was first seen."""
    _require(actor, channel_ok=True, perm=PERM_REVIEW, refund=_peek(refund_id))
    if not carrier or not tracking_number:
        raise RefundValidationError({"tracking_number": ["Carrier and tracking number are required."]})
    with transaction.atomic():
        refund = lock_refund(refund_id)
        if refund.state != State.AWAITING_RETURN:
            raise RefundNotAllowed(f"{refund.number} is {refund.get_state_display().lower()}; no return is due.")
        parcel = ReturnParcel.objects.select_for_update().get(request=refund)
        parcel.carrier, parcel.tracking_number, parcel.shipped_at = carrier, tracking_number, timezone.now()
        try:
            with transaction.atomic():
                parcel.save(update_fields=["carrier", "tracking_number", "shipped_at"])
        except IntegrityError:
            raise RefundValidationError({"tracking_number": ["This tracking number belongs to another return."]}) from None
        _move(refund, "return_shipped", actor=actor, note=f"{carrier} {tracking_number}")
        # Carrier scans that arrived before the customer told us the tracking number.
        TrackingEvent.objects.filter(
            carrier=carrier, tracking_number=tracking_number, shipment__isnull=True, return_parcel__isnull=True
        ).update(return_parcel=parcel)
    return refund


def return_tracking_seen(*, refund_id: int, actor: Actor = SYSTEM) -> RefundRequest:
    """A carrier scan of the return parcel: awaiting_return → return_in_transit (no-op otherwise)."""
    with transaction.atomic():
        refund = lock_refund(refund_id)
        if refund.state == State.AWAITING_RETURN:
            _move(refund, "return_shipped", actor=actor, note="carrier scan")
    return refund


def find_return(code: str) -> ReturnParcel | None:
    code = (code or "").strip()
    if not code:
        return None
    return (
        ReturnParcel.objects.filter(Q(return_code=code) | Q(tracking_number=code))
        .select_related("request")
        .order_by("-pk")
        .first()
    )


def return_receive(*, code: str, actor: Actor) -> RefundRequest:
    """The warehouse scanned a return code or tracking number: the parcel is received."""
    _require(actor, perm=PERM_RECEIVE)
    parcel = find_return(code)
    if parcel is None:
        raise NotFound(f"No return is expected with code or tracking number '{code.strip()}'.")
    with transaction.atomic():
        refund = lock_refund(parcel.request_id)
        if refund.state == State.RECEIVED or parcel.received_at:
            raise RefundNotAllowed(f"{refund.number} was already received.")
        if refund.state not in (State.AWAITING_RETURN, State.RETURN_IN_TRANSIT):
            raise RefundNotAllowed(f"{refund.number} is {refund.get_state_display().lower()}; no return is expected.")
        ReturnParcel.objects.filter(pk=parcel.pk).update(received_at=timezone.now(), received_by=actor.user)
        _move(refund, "receive", actor=actor, note=f"scanned {code.strip()}")
        notify_customer(refund=refund, event="parcel_received")
        notify_staff(role="finance", event="parcel_received", refund=refund)
    return refund


def return_inspect(*, refund_id: int, actor: Actor, grade: str, disposition: str, note: str = "", photo=None) -> RefundRequest:
    """Record the inspection: passed → ready_for_payout (finance is told); failed → back to support."""
    _require(actor, perm=PERM_RECEIVE)
    errors = {}
    if grade not in Inspection.Grade.values:
        errors["grade"] = [f"Use one of {', '.join(Inspection.Grade.values)}."]
    if disposition not in Inspection.Disposition.values:
        errors["disposition"] = [f"Use one of {', '.join(Inspection.Disposition.values)}."]
    if errors:
        raise RefundValidationError(errors)
    with transaction.atomic():
        refund = lock_refund(refund_id)
        if refund.state != State.RECEIVED:
            raise RefundNotAllowed(
                f"{refund.number} is {refund.get_state_display().lower()}; only a received parcel is inspected."
            )
        passed = grade in Inspection.PASSING_GRADES
        Inspection.objects.create(
            request=refund,
            grade=grade,
            disposition=disposition,
            note=note,
            photo=photo or "",
            passed=passed,
            inspected_by=actor.user,
        )
        if passed:
            _move(refund, "inspection_passed", actor=actor, note=f"{grade}, {disposition}. {note}".strip())
            _create_payouts(refund)
        else:
            reason = f"inspection failed: {stored_label(Inspection.Grade(grade).label).lower()}" + (f" — {note}" if note else "")
            _move(refund, "inspection_failed", actor=actor, reason=reason, note=reason, fields=["escalation_reason"])
            notify_staff(role="support", event="refund_escalated", refund=refund, context={"reason": reason})
    return refund


def refund_expire(*, refund_id: int, actor: Actor = SYSTEM) -> RefundRequest:
    """No parcel within the return window: awaiting_return → cancelled, hold released."""
    _require(actor, system_ok=True)
    with transaction.atomic():
        refund = lock_refund(refund_id, with_lines=True)
        parcel = ReturnParcel.objects.filter(request=refund).first()
        if refund.state == State.AWAITING_RETURN and parcel is not None and parcel.deadline > timezone.now():
            raise RefundNotAllowed(f"{refund.number} can still be returned until {parcel.deadline:%Y-%m-%d %H:%M}.")
        _move(refund, "expire", actor=actor, note="no parcel within the return window", fields=["cancelled_at"])
        _release_holds(refund)
        notify_customer(refund=refund, event="return_expired")
    return refund


def _release_holds(refund: RefundRequest) -> None:
    """Give back what the request held on the order; the caller holds the order and line locks."""
    if refund.holds_released_at is not None:
        return
    _release_lines(_request_moves(refund))
    Order.objects.filter(pk=refund.order_id).update(held_total=cents(F("held_total") - refund.amount_requested))
    refund.holds_released_at = timezone.now()
    refund.save(update_fields=["holds_released_at"])


# --- payouts -----------------------------------------------------------------------------


def _four_eyes_limit() -> Decimal:
    return Decimal(settings.REFUND_DESK["PAYOUT_FOUR_EYES_ABOVE"])


def payout_approve(*, payout_id: int, actor: Actor) -> Payout:
    """Finance approves one payout; execution is queued after commit.

    The person who approved the request can't approve its payout, and a payout above the
    four-eyes limit needs two different finance approvers.
    """
    _require(actor, perm=PERM_APPROVE_PAYOUT)
    with transaction.atomic():
        payout = lock_payout(payout_id)
        refund = payout.request
        if payout.state != Payout.State.PENDING_APPROVAL:
            raise RefundNotAllowed(f"{payout} is {payout.get_state_display().lower()}; only a pending payout can be approved.")
        if actor.user.pk in (refund.approved_by_id, refund.first_approved_by_id):
            raise ActionForbidden(f"{actor.label} approved {refund.number} and may not approve its payout.")
        if payout.amount > _four_eyes_limit():
            if payout.first_approved_by_id is None:
                payout.record_first_approval(at=timezone.now(), by=actor.user)
                payout.save(update_fields=["first_approved_by", "first_approved_at", "updated_at"])
                record_event(
                    refund, actor=actor, action="payout_first_approval", from_state=payout.state, payout=payout, public=False
                )
                return payout
            if payout.first_approved_by_id == actor.user.pk:
                raise ActionForbidden(f"{payout} is above {_four_eyes_limit()}: a second, different approver is needed.")
        before = payout.state
        payout.approve(at=timezone.now(), by=actor.user)
        payout.save(update_fields=["state", "approved_at", "approved_by", "updated_at"])
        record_event(refund, actor=actor, action="payout_approve", from_state=before, payout=payout, public=False)
        enqueue_on_commit("refunds.tasks.payout_execute_task", payout.pk)
    return payout


@dataclass
class BulkApproval:
    approved: list[int]
    first_approvals: list[int]
    skipped: dict[int, str]
    batch: PayoutBatch | None


def payout_approve_bulk(*, payout_ids: list[int], actor: Actor, note: str = "") -> BulkApproval:
    """Approve many payouts in one set-based pass, with the same rules as `payout_approve`.

    Rows are locked together (by pk), checked in SQL, moved with one UPDATE per outcome,
    and each gets its own event. Refused rows are reported in `skipped`, never changed.
    """
    _require(actor, perm=PERM_APPROVE_PAYOUT)
    user_id = actor.user.pk
    limit = _four_eyes_limit()
    now = timezone.now()
    ids = sorted(set(int(i) for i in payout_ids))
    with transaction.atomic():
        rows = list(
            Payout.objects.select_for_update(of=("self",), no_key=True)
            .filter(pk__in=ids)
            .order_by("pk")
            .values(
                "pk",
                "state",
                "amount",
                "first_approved_by_id",
                "request_id",
                "request__approved_by_id",
                "request__first_approved_by_id",
            )
        )
        skipped: dict[int, str] = {i: "no such payout" for i in set(ids) - {r["pk"] for r in rows}}
        approve, first = [], []
        for r in rows:
            if r["state"] != Payout.State.PENDING_APPROVAL:
                skipped[r["pk"]] = f"is {r['state']}"
            elif user_id in (r["request__approved_by_id"], r["request__first_approved_by_id"]):
                skipped[r["pk"]] = "you approved its refund request"
            elif r["amount"] > limit and r["first_approved_by_id"] is None:
                first.append(r)
            elif r["amount"] > limit and r["first_approved_by_id"] == user_id:
                skipped[r["pk"]] = "needs a second, different approver"
            else:
                approve.append(r)
        batch = PayoutBatch.objects.create(created_by=actor.user, note=note) if approve else None
        if approve:
            Payout.objects.filter(pk__in=[r["pk"] for r in approve]).update(
                state=Payout.State.APPROVED, approved_at=now, approved_by=actor.user, batch=batch, updated_at=now
            )
        if first:
            Payout.objects.filter(pk__in=[r["pk"] for r in first]).update(
                first_approved_by=actor.user, first_approved_at=now, updated_at=now
            )
        RefundEvent.objects.bulk_create(
            [
                RefundEvent(
                    request_id=r["request_id"],
                    payout_id=r["pk"],
                    action="payout_approve",
                    from_state=r["state"],
                    to_state=Payout.State.APPROVED,
                    actor_kind=RefundEvent.ActorKind.USER,
                    actor_user=actor.user,
                    at=now,
                    note=f"batch {batch}",
                )
                for r in approve
            ]
            + [
                RefundEvent(
                    request_id=r["request_id"],
                    payout_id=r["pk"],
                    action="payout_first_approval",
                    from_state=r["state"],
                    to_state=r["state"],
                    actor_kind=RefundEvent.ActorKind.USER,
                    actor_user=actor.user,
                    at=now,
                )
                for r in first
            ],
            batch_size=2000,
        )
        if batch is not None:
            enqueue_on_commit("refunds.tasks.payout_execute_batch_task", batch.pk)
    return BulkApproval(
        approved=[r["pk"] for r in approve], first_approvals=[r["pk"] for r in first], skipped=skipped, batch=batch
    )


OPEN_PAYOUT_STATES = [Payout.State.PENDING_APPROVAL, Payout.State.APPROVED, Payout.State.PROCESSING, Payout.State.FAILED]


def payout_void(*, payout_id: int, actor: Actor, note: str = "", reissue_method: str = "") -> Payout:
    """Void a pending or failed payout, optionally replacing it with a new pending payout of the
    same amount by `reissue_method` (a closed card paid as store credit instead).

    The last open payout of a request can only be voided with a replacement: otherwise the
    request would wait in `ready_for_payout` for money that nobody is going to pay.
    """
    _require(actor, perm=PERM_APPROVE_PAYOUT)
    if reissue_method and reissue_method not in RefundMethod.values:
        raise RefundValidationError({"reissue_method": [f"Use one of {', '.join(RefundMethod.values)}."]})
    with transaction.atomic():
        payout = lock_payout(payout_id)
        refund = payout.request
        before = payout.state
        if payout.state == Payout.State.OUTCOME_UNKNOWN:
            raise RefundNotAllowed(_unknown_sentence(payout, "voided or paid another way"))
        try:
            payout.void(at=timezone.now())
        except TransitionNotAllowed:
            raise RefundNotAllowed(f"{payout} is {payout.get_state_display().lower()}; it can't be voided.") from None
        others_open = refund.payouts.exclude(pk=payout.pk).filter(state__in=OPEN_PAYOUT_STATES).exists()
        if not reissue_method and not others_open:
            raise RefundNotAllowed(
                f"{payout} is the last open payout of {refund.number}; void it with a replacement method "
                "so the customer is still paid."
            )
        payout.save(update_fields=["state", "voided_at", "updated_at"])
        record_event(refund, actor=actor, action="payout_void", from_state=before, payout=payout, note=note, public=False)
        if reissue_method:
            replacement = Payout.objects.create(
                request=refund, method=reissue_method, amount=payout.amount, currency=payout.currency
            )
            record_event(
                refund,
                actor=actor,
                action="payout_reissue",
                from_state="",
                payout=replacement,
                note=f"replaces {payout}",
                public=False,
            )
    return payout


def payout_claim(*, payout_id: int, actor: Actor = SYSTEM) -> bool:
    """Take an approved payout for execution. Exactly one caller ever wins the claim."""
    with transaction.atomic():
        now = timezone.now()
        claimed = Payout.objects.filter(pk=payout_id, state=Payout.State.APPROVED).update(
            state=Payout.State.PROCESSING, processing_started_at=now, attempts=F("attempts") + 1, updated_at=now
        )
        if claimed:
            payout = Payout.objects.select_related("request").get(pk=payout_id)
            record_event(
                payout.request,
                actor=actor,
                action="payout_execute",
                from_state=Payout.State.APPROVED,
                payout=payout,
                public=False,
            )
    return bool(claimed)


def payout_retry(*, payout_id: int, actor: Actor) -> Payout:
    """Finance retries a failed payout with the same idempotency key."""
    _require(actor, perm=PERM_RETRY_PAYOUT)
    with transaction.atomic():
        payout = lock_payout(payout_id)
        before = payout.state
        if payout.state == Payout.State.OUTCOME_UNKNOWN:
            raise RefundNotAllowed(_unknown_sentence(payout, "retried"))
        if payout.state == Payout.State.FAILED and payout.failure_permanent:
            raise RefundNotAllowed(
                f"{payout} was declined for good ({payout.error}); void it and pay by store credit or coupon instead."
            )
        try:
            payout.retry(at=timezone.now())
        except TransitionNotAllowed:
            raise RefundNotAllowed(
                f"{payout} is {payout.get_state_display().lower()}; only a failed payout can be retried."
            ) from None
        payout.save(update_fields=["state", "processing_started_at", "attempts", "error", "updated_at"])
        record_event(payout.request, actor=actor, action="payout_retry", from_state=before, payout=payout, public=False)
        enqueue_on_commit("refunds.tasks.payout_send_task", payout.pk)
    return payout


def payout_execute(*, payout_id: int) -> Payout | None:
    """Claim an approved payout and pay it. Safe to call any number of times, concurrently."""
    if not payout_claim(payout_id=payout_id):
        return None
    return payout_send(payout_id=payout_id)


def payout_send(*, payout_id: int) -> Payout:
    """Pay a payout that is `processing`. Outside any transaction: no lock is held during I/O.

    The gateway gets the payout's idempotency key, so calling this again for the same payout
    (a crashed worker re-driven by the sweeper) never pays twice. Only an answer that says
    "not paid" fails the payout; anything else (a timeout, a dropped connection, an error
    of ours after the call) leaves its outcome unknown until the gateway is asked.
    """
    payout = Payout.objects.select_related("request__order__payment", "request__customer").get(pk=payout_id)
    if payout.state != Payout.State.PROCESSING:
        return payout
    try:
        result = _pay(payout)
    except GatewayDeclined as exc:
        return payout_record_result(payout_id=payout_id, declined=str(exc), permanent=exc.permanent)
    except Exception as exc:  # noqa: BLE001 - whatever went wrong, the money may have moved
        logger.warning(
            "payout %s: no answer that says whether it was paid: %s",
            payout,
            exc,
            exc_info=not isinstance(exc, GatewayUnavailable),  # our own error: keep its traceback
        )
        return payout_record_result(payout_id=payout_id, unknown=_describe_unknown(exc))
    return payout_record_result(payout_id=payout_id, reference=result.reference)


def _describe_unknown(exc: Exception) -> str:
    if isinstance(exc, GatewayTimeout):
        return f"timeout: {exc}"
    if isinstance(exc, GatewayUnavailable):
        return f"no answer: {exc}"
    return f"unexpected error ({type(exc).__name__}): {exc}"


def _unknown_sentence(payout: Payout, verb: str) -> str:
    answer = payout.status_answer or "not asked yet"
    return (
        f"{payout}'s outcome is unknown ({payout.error}): the gateway may have paid it. It can't be {verb} "
        f"until the gateway answers that it did not pay; it is being asked (last answer: {answer})."
    )


def _pay(payout: Payout) -> GatewayResult:
    refund = payout.request
    if payout.method == RefundMethod.ORIGINAL_PAYMENT:
        payment = getattr(refund.order, "payment", None)
        return get_gateway().refund(
            idempotency_key=str(payout.idempotency_key),
            payment_reference=payment.reference if payment else "",
            amount=payout.amount,
            currency=payout.currency,
        )
    if payout.method == RefundMethod.STORE_CREDIT:
        entry, _ = WalletEntry.objects.get_or_create(
            payout=payout,
            defaults={
                "customer_id": refund.customer_id,
                "amount": payout.amount,
                "currency": payout.currency,
                "note": f"refund {refund.number}",
            },
        )
        return GatewayResult(reference=f"WALLET-{entry.pk}")
    coupon = Coupon.objects.filter(payout=payout).first()
    if coupon is None:
        try:
            with transaction.atomic():
                coupon = Coupon.objects.create(
                    payout=payout,
                    code=secrets.token_hex(6).upper(),
                    customer_id=refund.customer_id,
                    amount=payout.amount,
                    currency=payout.currency,
                    expires_at=timezone.now() + timedelta(days=settings.REFUND_DESK["COUPON_VALID_DAYS"]),
                )
        except IntegrityError:
            coupon = Coupon.objects.get(payout=payout)
    return GatewayResult(reference=f"COUPON-{coupon.code}")


def payout_record_result(
    *,
    payout_id: int,
    reference: str = "",
    declined: str = "",
    permanent: bool = False,
    unknown: str = "",
    actor: Actor = SYSTEM,
) -> Payout:
    """Record what the gateway's call came to: paid (`reference`), `declined` (it said it did
    not pay; `permanent` if retrying cannot help), or `unknown` (no answer that says). Only a
    `processing` payout moves; a late duplicate is ignored.

    On success the order's refunded total grows and, once every payout of the request has
    succeeded, the request becomes `refunded` and its lines' held units become refunded.
    """
    if sum(map(bool, (reference, declined, unknown))) != 1:
        raise ValueError("Give exactly one of reference, declined or unknown.")
    with transaction.atomic():
        payout = lock_payout(payout_id)
        if payout.state != Payout.State.PROCESSING:
            return payout
        now = timezone.now()
        if unknown:
            payout.lose_track(at=now, error=unknown, check_at=now + _status_backoff(0))
            payout.save(
                update_fields=[
                    "state",
                    "outcome_unknown_at",
                    "error",
                    "status_checks",
                    "status_answer",
                    "next_status_check_at",
                    "updated_at",
                ]
            )
            record_event(
                payout.request,
                actor=actor,
                action="payout_outcome_unknown",
                from_state=Payout.State.PROCESSING,
                payout=payout,
                note=unknown,
                public=False,
            )
        elif declined:
            _record_failure(payout, error=declined, permanent=permanent, actor=actor)
        else:
            _record_success(payout, reference=reference, actor=actor)
    return payout


def _record_failure(payout: Payout, *, error: str, permanent: bool, actor: Actor) -> None:
    before = payout.state
    payout.fail(at=timezone.now(), error=error, permanent=permanent)
    payout.save(update_fields=["state", "failed_at", "error", "failure_permanent", "next_status_check_at", "updated_at"])
    record_event(payout.request, actor=actor, action="payout_failed", from_state=before, payout=payout, note=error, public=False)
    notify_staff(role="finance", event="payout_failed", refund=payout.request, context={"payout": str(payout), "error": error})


def _record_success(payout: Payout, *, reference: str, actor: Actor, note: str = "") -> None:
    refund = payout.request
    before = payout.state
    payout.succeed(at=timezone.now(), reference=reference)
    payout.save(update_fields=["state", "succeeded_at", "gateway_reference", "error", "next_status_check_at", "updated_at"])
    record_event(
        refund,
        actor=actor,
        action="payout_succeeded",
        from_state=before,
        payout=payout,
        note=note or reference,
        public=False,
    )
    Order.objects.filter(pk=refund.order_id).update(
        refunded_total=cents(F("refunded_total") + payout.amount), held_total=cents(F("held_total") - payout.amount)
    )
    RefundRequest.objects.filter(pk=refund.pk).update(amount_paid=cents(F("amount_paid") + payout.amount))
    refund.refresh_from_db(fields=["amount_paid"])
    open_payouts = refund.payouts.exclude(state__in=[Payout.State.SUCCEEDED, Payout.State.VOIDED]).exists()
    if not open_payouts and refund.state == State.READY_FOR_PAYOUT:
        _complete(refund)


def _status_backoff(checks_so_far: int) -> timedelta:
    cfg = settings.REFUND_DESK
    seconds = cfg["PAYOUT_STATUS_CHECK_FIRST_SECONDS"] * (2 ** min(checks_so_far, 20))
    return timedelta(seconds=min(seconds, cfg["PAYOUT_STATUS_CHECK_MAX_SECONDS"]))


def payout_check_status(*, payout_id: int) -> Payout:
    """Ask what became of a payout whose outcome is unknown, and record the answer. Outside any
    transaction: no lock is held while the gateway is asked. Safe to run twice, concurrently."""
    payout = Payout.objects.select_related("request").get(pk=payout_id)
    if payout.state != Payout.State.OUTCOME_UNKNOWN:
        return payout
    try:
        answer = _status(payout)
    except Exception as exc:  # noqa: BLE001 - an unanswered question is an unknown answer
        logger.warning("payout %s: the status query failed: %s", payout, exc)
        answer = StatusAnswer(RefundStatus.UNKNOWN, detail=f"the query failed: {_describe_unknown(exc)}")
    return payout_record_status(payout_id=payout_id, answer=answer)


def _status(payout: Payout) -> StatusAnswer:
    """The gateway's answer for an original-payment payout; our own books for the others (a
    wallet entry or a coupon is written under the payout, once)."""
    if payout.method == RefundMethod.ORIGINAL_PAYMENT:
        return get_gateway().refund_status(idempotency_key=str(payout.idempotency_key))
    if payout.method == RefundMethod.STORE_CREDIT:
        entry = WalletEntry.objects.filter(payout=payout).first()
        if entry:
            return StatusAnswer(RefundStatus.PAID, reference=f"WALLET-{entry.pk}", amount=entry.amount)
        return StatusAnswer(RefundStatus.NOT_PAID, detail="no wallet entry was written")
    coupon = Coupon.objects.filter(payout=payout).first()
    if coupon:
        return StatusAnswer(RefundStatus.PAID, reference=f"COUPON-{coupon.code}", amount=coupon.amount)
    return StatusAnswer(RefundStatus.NOT_PAID, detail="no coupon was issued")


def payout_ask_gateway(*, payout_id: int, actor: Actor) -> Payout:
    """Finance asks the gateway about an unknown outcome now instead of at the next back-off;
    the question itself runs in a task (no I/O in the request, none under a lock)."""
    _require(actor, perm=PERM_APPROVE_PAYOUT)
    with transaction.atomic():
        payout = lock_payout(payout_id)
        if payout.state != Payout.State.OUTCOME_UNKNOWN:
            raise RefundNotAllowed(f"{payout} is {payout.get_state_display().lower()}; its outcome is known.")
        payout.next_status_check_at = timezone.now()
        payout.save(update_fields=["next_status_check_at", "updated_at"])
        enqueue_on_commit("refunds.tasks.payout_check_status_task", payout.pk)
    return payout


def payout_record_status(*, payout_id: int, answer: StatusAnswer, actor: Actor = SYSTEM) -> Payout:
    """Record the gateway's answer about an unknown outcome: paid → succeeded; not paid →
    failed (and only now may it be voided, reissued or retried); no answer → asked again
    later, and finance is alerted once it has gone unanswered `PAYOUT_STATUS_ALERT_AFTER` times."""
    with transaction.atomic():
        payout = lock_payout(payout_id)
        if payout.state != Payout.State.OUTCOME_UNKNOWN:
            return payout
        now = timezone.now()
        if answer.status == RefundStatus.PAID:
            note = f"the gateway, asked, says it paid: {answer.reference}"
            if answer.amount is not None and answer.amount != payout.amount:
                note += f" (it paid {answer.amount}, the payout is {payout.amount}: see reconciliation)"
            _record_success(payout, reference=answer.reference, actor=actor, note=note)
        elif answer.status == RefundStatus.NOT_PAID:
            _record_failure(
                payout, error=f"the gateway, asked, confirmed it did not pay: {answer.detail}", permanent=False, actor=actor
            )
        else:
            payout.record_status_answer(
                at=now, answer=answer.detail or "no answer", check_at=now + _status_backoff(payout.status_checks + 1)
            )
            payout.save(
                update_fields=["status_checks", "status_checked_at", "status_answer", "next_status_check_at", "updated_at"]
            )
            if payout.status_checks == settings.REFUND_DESK["PAYOUT_STATUS_ALERT_AFTER"]:
                notify_staff(
                    role="finance",
                    event="payout_outcome_unknown",
                    refund=payout.request,
                    context={
                        "payout": str(payout),
                        "error": payout.error,
                        "answer": payout.status_answer,
                        "checks": payout.status_checks,
                    },
                )
    return payout


def _complete(refund: RefundRequest) -> None:
    """Every payout succeeded: the held units become refunded, what was not paid is released."""
    _release_lines(_request_moves(refund), refunded=True)
    unpaid = refund.amount_requested - refund.amount_paid
    if unpaid:
        Order.objects.filter(pk=refund.order_id).update(held_total=cents(F("held_total") - unpaid))
    refund.holds_released_at = timezone.now()
    _move(refund, "complete", actor=SYSTEM, fields=["refunded_at", "holds_released_at"])
    notify_customer(
        refund=refund,
        event="refund_paid",
        context={"amount": str(refund.amount_paid), "method": refund.get_refund_method_display()},
    )
