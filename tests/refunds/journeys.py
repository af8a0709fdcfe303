"""Build refund requests in a given state by driving them through `refunds.services`.

Nothing here sets a state directly: every source state a test starts from was reached the
way production reaches it, so the event log and the holds on the order are real.
"""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from config.actors import SYSTEM, Actor
from orders.models import Order
from refunds import services
from refunds.models import RefundRequest
from tests.factories import OrderFactory

S = RefundRequest.State


@dataclass
class Cast:
    """The people (and the channel) a journey needs."""

    support: Actor
    warehouse: Actor
    finance: Actor

    def channel(self, refund_id: int) -> Actor:
        return Actor.for_channel(RefundRequest.objects.get(pk=refund_id).channel)


_keys = iter(range(1, 10**9))


def submit(
    order,
    *,
    kind: str = RefundRequest.Kind.RETURN_AND_REFUND,
    reason: str = "size_fit",
    lines=None,
    method: str = "original_payment",
    key: str | None = None,
) -> int:
    """Submit through the channel; evaluation is NOT run here (tests call it explicitly)."""
    refund, created = services.refund_submit(
        actor=Actor.for_channel(order.channel),
        channel=order.channel,
        idempotency_key=key or f"journey-{next(_keys)}",
        order_number=order.number,
        kind=kind,
        reason=reason,
        lines=lines,
        refund_method=method,
    )
    assert created
    return refund.pk


def evaluated(order, **kwargs) -> int:
    refund_id = submit(order, **kwargs)
    services.refund_evaluate(refund_id=refund_id, actor=SYSTEM)
    return refund_id


def order_of(amount: str = "50.00", **kwargs):
    return OrderFactory(lines=[("SKU-1", 1, amount)], **kwargs)


def state_of(refund_id: int) -> str:
    return RefundRequest.objects.values_list("state", flat=True).get(pk=refund_id)


def return_code(refund_id: int) -> str:
    return RefundRequest.objects.get(pk=refund_id).return_parcel.return_code


# --- one builder per source state ---------------------------------------------------------


def build_submitted(cast: Cast) -> int:
    return submit(order_of())


def build_under_review(cast: Cast) -> int:
    # A dispute reason always goes to a person.
    return evaluated(order_of(), reason="not_as_described")


def build_awaiting_customer_asked(cast: Cast) -> int:
    refund_id = build_under_review(cast)
    services.refund_ask_customer(refund_id=refund_id, actor=cast.support, question="Photo of the damage, please?")
    return refund_id


def build_awaiting_customer_offer(cast: Cast) -> int:
    # Shipped, still moving, "shipping delay": the policy offers to expedite instead.
    order = order_of(state=Order.State.SHIPPED)
    return evaluated(order, reason="shipping_delay")


def build_awaiting_return(cast: Cast) -> int:
    return evaluated(order_of())


def build_return_in_transit(cast: Cast) -> int:
    refund_id = build_awaiting_return(cast)
    services.return_ship(refund_id=refund_id, actor=cast.channel(refund_id), carrier="sf", tracking_number=f"RT{refund_id:08d}")
    return refund_id


def build_received(cast: Cast) -> int:
    refund_id = build_awaiting_return(cast)
    services.return_receive(code=return_code(refund_id), actor=cast.warehouse)
    return refund_id


def build_ready_for_payout(cast: Cast) -> int:
    refund_id = build_received(cast)
    services.return_inspect(refund_id=refund_id, actor=cast.warehouse, grade="unopened", disposition="restock")
    return refund_id


def build_refunded(cast: Cast) -> int:
    refund_id = build_ready_for_payout(cast)
    payout = RefundRequest.objects.get(pk=refund_id).payouts.get()
    services.payout_approve(payout_id=payout.pk, actor=cast.finance)
    services.payout_execute(payout_id=payout.pk)
    return refund_id


def build_rejected(cast: Cast) -> int:
    refund_id = build_under_review(cast)
    services.refund_reject(refund_id=refund_id, actor=cast.support, reason="The photos show normal wear.")
    return refund_id


def build_withdrawn(cast: Cast) -> int:
    refund_id = build_submitted(cast)
    services.refund_withdraw(refund_id=refund_id, actor=cast.channel(refund_id))
    return refund_id


def build_cancelled(cast: Cast) -> int:
    refund_id = build_awaiting_return(cast)
    _pass_return_deadline(refund_id)
    services.refund_expire(refund_id=refund_id, actor=SYSTEM)
    return refund_id


def build_resolved(cast: Cast) -> int:
    refund_id = build_awaiting_customer_offer(cast)
    services.refund_accept_alternative(refund_id=refund_id, actor=cast.channel(refund_id))
    return refund_id


def _pass_return_deadline(refund_id: int) -> None:
    # Time passing is not a state change: moving the parcel's deadline stands in for a clock.
    from refunds.models import ReturnParcel

    ReturnParcel.objects.filter(request_id=refund_id).update(deadline=timezone.now() - timedelta(minutes=1))


BUILDERS = {
    "submitted": build_submitted,
    "under_review": build_under_review,
    "awaiting_customer/asked": build_awaiting_customer_asked,
    "awaiting_customer/offer": build_awaiting_customer_offer,
    "awaiting_return": build_awaiting_return,
    "return_in_transit": build_return_in_transit,
    "received": build_received,
    "ready_for_payout": build_ready_for_payout,
    "refunded": build_refunded,
    "rejected": build_rejected,
    "withdrawn": build_withdrawn,
    "cancelled": build_cancelled,
    "resolved": build_resolved,
}

ZERO = Decimal("0.00")
