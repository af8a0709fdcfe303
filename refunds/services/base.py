import logging
from decimal import Decimal

from django.db.models.functions import Round
from django.utils import timezone
from django_fsm import TransitionNotAllowed

from config.actors import Actor
from orders.models import Order, OrderLine
from refunds.errors import (
    ActionForbidden,
    NotFound,
    RefundNotAllowed,
)
from refunds.models import (
    Payout,
    RefundEvent,
    RefundRequest,
)

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")
State = RefundRequest.State


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


def require(actor: Actor, *, perm: str | None = None, channel_ok: bool = False, system_ok: bool = False, refund=None):
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


def move(refund: RefundRequest, method: str, *, actor: Actor, note: str = "", public: bool = True, fields=(), **kwargs):
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


def peek(refund_id: int) -> RefundRequest:
    refund = RefundRequest.objects.filter(pk=refund_id).only("id", "channel_id").first()
    if refund is None:
        raise NotFound(f"Refund request {refund_id} does not exist.")
    return refund
