import logging
from contextlib import nullcontext
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from config.actors import Actor
from config.q2 import enqueue_on_commit, task_row
from orders.models import OrderLine
from refunds import intake
from refunds import permissions as perms
from refunds.errors import (
    ActionForbidden,
    IdempotencyConflict,
    NotFound,
    RefundValidationError,
)
from refunds.models import (
    Reason,
    RefundEvent,
    RefundLine,
    RefundMethod,
    RefundRequest,
)
from refunds.services.base import build_event, require
from refunds.services.holds import line_amount

logger = logging.getLogger(__name__)

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
        require(actor, channel_ok=True)
    else:
        require(actor, perm=perms.CREATE_FOR_CUSTOMER)
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
    taken: list[tuple[OrderLine, int, Decimal]] = [(line, qty, line_amount(line, qty)) for line, qty in wanted]
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
    (`capture_intake_facts`), still before any decision; one task, one broker write, which
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
