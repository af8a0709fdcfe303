"""Order state changes, each recorded in the order's history."""

from django.db import transaction
from django.utils import timezone
from django_fsm import TransitionNotAllowed

from orders.actors import Actor
from orders.models import Order, OrderEvent
from refunds.errors import RefundNotAllowed

_FIELDS = {
    "pay": "paid_at",
    "ship": "shipped_at",
    "deliver": "delivered_at",
    "complete": "completed_at",
    "cancel": "cancelled_at",
}


def order_transition(*, order_id: int, actor: Actor, action: str, at=None, note: str = "") -> Order:
    """Move an order along pay → ship → deliver → complete (or cancel). Never backwards."""
    if action not in _FIELDS:
        raise ValueError(f"unknown order action {action}")
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        before = order.state
        try:
            getattr(order, action)(at=at or timezone.now())
        except TransitionNotAllowed:
            raise RefundNotAllowed(f"Order {order.number} is {order.state}; it can't {action} now.") from None
        order.save(update_fields=["state", _FIELDS[action], "updated_at"])
        OrderEvent.objects.create(
            order=order, from_state=before, to_state=order.state, actor=actor.label, note=note, at=at or timezone.now()
        )
    return order
