"""Requests built through the real services, for the admin screens' tests."""

from decimal import Decimal

import pytest

from config.actors import Actor
from refunds import services
from refunds.models import RefundRequest
from tests.factories import OrderFactory, UserFactory

ROLES = ["support", "warehouse", "finance", "risk", "admin"]


def escalated_request(*, price: str = "50.00", qty: int = 1, kind: str = "return_and_refund", order=None, key=None):
    """A request that the policy sends to a person (a dispute reason): `under_review`."""
    order = order or OrderFactory(lines=[("SKU-1", qty, Decimal(price))])
    refund, _ = services.refund_submit(
        actor=Actor.for_channel(order.channel),
        channel=order.channel,
        idempotency_key=key or f"k-{order.pk}",
        order_number=order.number,
        kind=kind,
        reason="not_as_described",
    )
    services.refund_evaluate(refund_id=refund.pk)
    refund.refresh_from_db()
    assert refund.state == RefundRequest.State.UNDER_REVIEW, refund.rule_trace
    return refund


def awaiting_return_request(**kwargs):
    """An approved return-and-refund request: `awaiting_return` with a return parcel."""
    refund = escalated_request(**kwargs)
    approver = UserFactory(username=f"approver-{refund.pk}", role="support")
    services.refund_approve(refund_id=refund.pk, actor=Actor.for_user(approver))
    refund.refresh_from_db()
    assert refund.state == RefundRequest.State.AWAITING_RETURN
    return refund


def confirm_approval(client, page):
    """Press "Yes, approve" on a payout approval's confirmation page, as the browser posts its form."""
    assert page.status_code == 200 and 'id="approve-confirmation"' in page.content.decode()
    data = {}
    for name, value in page.context["hidden"]:
        data.setdefault(name, []).append(value)
    data.update(digest=page.context["preview"].digest, confirm="yes")
    return client.post(page.context["action_url"], data, follow=True)


@pytest.fixture
def role_user(db):
    """role_user('support') → a staff user in that role ('admin' → a superuser)."""

    def make(role):
        if role == "admin":
            return UserFactory(username="admin", is_superuser=True)
        return UserFactory(username=f"{role}-user", role=role)

    return make
