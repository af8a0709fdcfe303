"""Intake: a request is admitted, and what it asks for is held on the order, in one way on
every database.

`refund_submit` locks the order and its lines (`refunds.intake.lock_order`), asks
`refunds.services.holds.take` what may be refunded (the amounts, and every refusal with its
sentence), writes the holds, the request, its lines and its `submit` event
(`refunds.intake`), and queues the evaluation after commit. There is no other path: the
statements are hand-written for speed, the decisions are not (`tests/refunds/
test_intake_property.py` holds them to a plain ORM reference).
"""

import logging
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from config.actors import Actor
from config.q2 import enqueue_swept_on_commit
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
from refunds.services.holds import NOTHING_LEFT, take

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
        "refund_method": refund_method,
        "customer_note": customer_note,
        "body_fingerprint": body_fingerprint,
    }
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            order, order_lines = intake.lock_order(cursor, **where)
            try:
                if order is None:
                    if intake.order_exists(cursor, **where):
                        raise RefundValidationError({"lines": [NOTHING_LEFT]})
                    raise NotFound(f"Order {order_number} does not exist.")
                taken = take(order, order_lines, lines)
            except (RefundValidationError, NotFound):
                # A replay is answered before any refusal: the first request may have taken
                # what is asked for. Looked up under the order's lock, a concurrent POST with
                # the same key waits there and then finds the first one's request. (An
                # admitted replay is caught by the key's unique constraint below.)
                existing = _find_idempotent(cursor, channel, idempotency_key, body_fingerprint)
                if existing:
                    return existing, False
                raise
            refund, refund_lines, event = _new_request(order, taken, new)
            intake.hold(cursor, order=order, moves=taken)
            intake.insert(cursor, [refund])
            for obj in (*refund_lines, event):
                obj.request = refund
            intake.insert(cursor, refund_lines)
            intake.insert(cursor, [event])
            _submitted(refund, refund_lines, event)
    except IntegrityError:
        # The key was used already (a replay that was admissible again, or the same key racing
        # in on another order): the unique constraint decided, and nothing of this was written.
        with connection.cursor() as cursor:
            existing = _find_idempotent(cursor, channel, idempotency_key, body_fingerprint)
        if existing:
            return existing, False
        raise
    return refund, True


def _find_idempotent(cursor, channel, key: str, fingerprint: str) -> RefundRequest | None:
    match = intake.idempotent_match(cursor, channel_id=channel.pk, key=key)
    return _replay(match, fingerprint) if match is not None else None


def _replay(match: tuple[int, str], fingerprint: str) -> RefundRequest:
    """The request a repeated Idempotency-Key names, if the body is the same."""
    if match[1] != fingerprint:
        raise IdempotencyConflict("This Idempotency-Key was already used with a different body.")
    return RefundRequest.objects.get(pk=match[0])


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


def _new_request(
    order, taken: list[tuple[OrderLine, int, Decimal]], new: dict
) -> tuple[RefundRequest, list[RefundLine], RefundEvent]:
    """The request on `order` for what `take` allowed, its lines and its `submit` event,
    none of them saved yet."""
    now = timezone.now()
    refund = RefundRequest(
        channel_id=new["channel"].pk,
        idempotency_key=new["idempotency_key"],
        body_fingerprint=new["body_fingerprint"],
        kind=new["kind"],
        requested_kind=new["kind"],
        reason=new["reason"],
        refund_method=new["refund_method"],
        customer_note=new["customer_note"],
        state_changed_at=now,
        created_at=now,
        updated_at=now,
        order=order,
        customer_id=order.customer_id,
        currency=order.currency,
        amount_requested=sum((amount for _, _, amount in taken), Decimal("0.00")),
    )
    refund.channel = new["channel"]
    event = _submit_event(new, now)
    event.request = refund
    refund_lines = [RefundLine(request=refund, order_line=line, quantity=qty, amount=amount) for line, qty, amount in taken]
    return refund, refund_lines, event


def _submitted(refund: RefundRequest, refund_lines: list[RefundLine], event: RefundEvent) -> None:
    """After the request is written. Intake is only the write: the evidence, the risk score
    and the customer's receipt are the first thing the evaluation task does
    (`capture_intake_facts`), still before any decision. The request itself, `submitted`,
    is the record that it waits to be evaluated: its task is queued after commit (without a
    second wait for the disk, see config.q2), and one the broker refused or a crash lost is
    re-driven by `refunds.tasks.sweep_submitted`."""
    enqueue_swept_on_commit("refunds.tasks.refund_evaluate_task", refund.pk)
    # The caller answers from what was just written instead of reading it back.
    _set_loaded(refund, "lines", refund_lines)
    _set_loaded(refund, "events", [event])


def _set_loaded(instance, relation: str, objects: list) -> None:
    """Mark a reverse relation as loaded with `objects`, as `prefetch_related` would."""
    qs = getattr(instance, relation).all()
    qs._result_cache, qs._prefetch_done = list(objects), True
    instance.__dict__.setdefault("_prefetched_objects_cache", {})[relation] = qs
