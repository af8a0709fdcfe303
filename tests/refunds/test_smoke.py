from decimal import Decimal

import pytest

from config.actors import Actor
from refunds import services
from refunds.models import Payout, RefundRequest
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


def test_refund_only_request_is_paid_end_to_end(django_capture_on_commit_callbacks, finance):
    order = OrderFactory(lines=[("SKU-1", 1, "15.00")])
    with django_capture_on_commit_callbacks(execute=True):
        refund, created = services.refund_submit(
            actor=Actor.for_channel(order.channel),
            channel=order.channel,
            idempotency_key="k1",
            order_number=order.number,
            kind="return_and_refund",
            reason="size_fit",
        )
    refund.refresh_from_db()
    assert created
    assert refund.state == RefundRequest.State.READY_FOR_PAYOUT
    payout = refund.payouts.get()
    with django_capture_on_commit_callbacks(execute=True):
        services.payout_approve(payout_id=payout.pk, actor=finance)
    payout.refresh_from_db()
    refund.refresh_from_db()
    order.refresh_from_db()
    assert payout.state == Payout.State.SUCCEEDED
    assert refund.state == RefundRequest.State.REFUNDED
    assert order.refunded_total == Decimal("15.00")
    assert order.held_total == Decimal("0.00")
    assert order.refund_status == "full"
