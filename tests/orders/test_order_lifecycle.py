"""The order's own machine: forward only, each step in its history, refused steps change nothing."""

import pytest

from config.actors import Actor
from orders.models import Order, OrderEvent
from orders.services import order_transition
from refunds.errors import RefundNotAllowed
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db
S = Order.State

ALLOWED = {
    (S.PENDING_PAYMENT, "pay"): S.PAID,
    (S.PAID, "ship"): S.SHIPPED,
    (S.SHIPPED, "deliver"): S.DELIVERED,
    (S.DELIVERED, "complete"): S.COMPLETED,
    (S.PENDING_PAYMENT, "cancel"): S.CANCELLED,
    (S.PAID, "cancel"): S.CANCELLED,
}
ACTIONS = ["pay", "ship", "deliver", "complete", "cancel"]
PATH = {S.PAID: ["pay"], S.SHIPPED: ["pay", "ship"], S.DELIVERED: ["pay", "ship", "deliver"]}
PATH |= {S.COMPLETED: ["pay", "ship", "deliver", "complete"], S.CANCELLED: ["cancel"], S.PENDING_PAYMENT: []}
PAIRS = [(state, action) for state in S.values for action in ACTIONS]


def _order_in(state: str) -> Order:
    order = OrderFactory(state=S.PENDING_PAYMENT, lines=[("SKU-1", 1, "20.00")], with_shipment=False)
    for action in PATH[state]:
        order_transition(order_id=order.pk, actor=Actor.system(), action=action)
    return Order.objects.get(pk=order.pk)


@pytest.mark.parametrize(("state", "action"), PAIRS, ids=[f"{s}-{a}" for s, a in PAIRS])
def test_an_order_moves_only_as_drawn(state, action):
    order = _order_in(state)
    events = OrderEvent.objects.filter(order=order).count()
    channel = Actor.for_channel(order.channel)

    if (state, action) in ALLOWED:
        order_transition(order_id=order.pk, actor=channel, action=action, note="from the channel")
        after = Order.objects.get(pk=order.pk)
        assert after.state == ALLOWED[(state, action)]
        stamp = {"pay": "paid_at", "ship": "shipped_at", "deliver": "delivered_at", "complete": "completed_at"}
        assert getattr(after, stamp.get(action, "cancelled_at")) is not None
        last = OrderEvent.objects.filter(order=order).order_by("pk").last()
        assert (last.from_state, last.to_state, last.actor) == (state, after.state, f"channel:{order.channel.name}")
        assert OrderEvent.objects.filter(order=order).count() == events + 1
    else:
        with pytest.raises(RefundNotAllowed, match=f"it can't {action} now"):
            order_transition(order_id=order.pk, actor=channel, action=action)
        after = Order.objects.get(pk=order.pk)
        assert (after.state, after.updated_at) == (order.state, order.updated_at)
        assert OrderEvent.objects.filter(order=order).count() == events


def test_refund_status_is_derived_from_the_money():
    order = OrderFactory(lines=[("SKU-1", 2, "10.00")])
    Order.objects.filter(pk=order.pk).update(refunded_total="10.00")
    order.refresh_from_db()
    assert order.refund_status == "partial"
    Order.objects.filter(pk=order.pk).update(refunded_total="20.00")
    order.refresh_from_db()
    assert order.refund_status == "full"
