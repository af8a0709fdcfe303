"""The evidence report: what it holds, that it is a snapshot, and that it costs a fixed
number of queries however long the order's story is."""

from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.actors import Actor
from notifications.models import Notification
from orders.models import AddressChange, CustomerMessage, OrderEvent, TrackingEvent
from refunds import services
from refunds.evidence import capture_evidence
from refunds.models import RefundRequest
from tests.factories import AddressFactory, ChannelFactory, CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def submit(django_capture_on_commit_callbacks):
    """Submit as the API does; the evidence is captured by the task queued after commit (run
    inline here), before it evaluates."""

    def _submit(order, key="k", **kw):
        with django_capture_on_commit_callbacks(execute=True):
            refund, _ = services.refund_submit(
                actor=Actor.for_channel(order.channel),
                channel=order.channel,
                idempotency_key=key,
                order_number=order.number,
                kind=kw.get("kind", "return_and_refund"),
                reason=kw.get("reason", "not_received"),
                customer_note="never arrived",
            )
        return RefundRequest.objects.get(pk=refund.pk)

    return _submit


def _story(order, n):
    shipment = order.shipments.get()
    for i in range(n):
        TrackingEvent.objects.create(
            carrier="sf",
            tracking_number=shipment.tracking_number,
            status="in_transit",
            occurred_at=order.shipped_at + timedelta(hours=i),
            location=f"hub {i}",
            shipment=shipment,
        )
        CustomerMessage.objects.create(
            customer=order.customer, order=order, channel=order.channel, direction="in", body=f"msg {i}"
        )
        OrderEvent.objects.create(order=order, from_state="x", to_state="y", actor="test")
        AddressChange.objects.create(order=order, customer=order.customer, new_address=AddressFactory(customer=order.customer))


def test_the_report_holds_what_support_needs(submit):
    order = OrderFactory(lines=[("SKU-1", 2, "29.95")])
    _story(order, 2)
    # The same phone on another channel: those messages are part of the conversation too.
    elsewhere = CustomerFactory(channel=ChannelFactory(name="market"), phone=order.customer.phone)
    CustomerMessage.objects.create(customer=elsewhere, channel=elsewhere.channel, direction="in", body="from the marketplace")
    ev = submit(order).evidence

    assert set(ev) >= {
        "captured_at",
        "order",
        "payment",
        "shipments",
        "days_since_delivery",
        "messages",
        "customer_history",
        "address_changes",
        "risk",
        "customer",
        "request",
    }
    assert set(ev["order"]) >= {"number", "state", "placed_at", "currency", "paid_total", "refunded_total", "history", "lines"}
    assert ev["order"]["number"] == order.number and ev["order"]["paid_total"] == "59.90"
    assert ev["payment"]["reference"] == f"PAY-{order.number}"
    assert [e["location"] for e in ev["shipments"][0]["events"]] == ["hub 0", "hub 1"]
    assert ev["shipments"][0]["delivered_at"] is not None
    assert ev["days_since_delivery"] == (timezone.now() - order.delivered_at).days
    assert "from the marketplace" in [m["body"] for m in ev["messages"]]
    assert ev["customer_history"]["orders"] == 1 and ev["customer_history"]["refund_requests"] == 1
    assert len(ev["address_changes"]) == 2
    assert set(ev["risk"]) == {"score", "level", "signals"}
    assert ev["request"] == {"reason": "not_received", "kind": "return_and_refund", "amount": "59.90", "note": "never arrived"}


def test_intake_leaves_the_report_to_its_task_which_captures_it_before_deciding(django_capture_on_commit_callbacks):
    order = OrderFactory(lines=[("SKU-1", 2, "29.95")])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        refund, _ = services.refund_submit(
            actor=Actor.for_channel(order.channel),
            channel=order.channel,
            idempotency_key="k",
            order_number=order.number,
            kind="return_and_refund",
            reason="not_received",
        )
    refund.refresh_from_db()
    assert (refund.evidence, refund.risk_score, refund.risk_level) == ({}, None, "")
    assert not Notification.objects.filter(event="request_received").exists()
    assert len(callbacks) == 1, "one task per submit"

    for cb in callbacks:
        cb()
    refund.refresh_from_db()
    assert refund.state != "submitted" and refund.risk_score is not None
    assert datetime.fromisoformat(refund.evidence["captured_at"]) <= refund.evaluated_at
    assert refund.evidence["risk"] == {"score": refund.risk_score, "level": refund.risk_level, "signals": refund.risk_signals}
    assert Notification.objects.filter(refund=refund, event="request_received").exists()


def test_the_report_is_a_snapshot(submit):
    order = OrderFactory(lines=[("SKU-1", 2, "29.95")])
    refund = submit(order)
    before = refund.evidence
    CustomerMessage.objects.create(customer=order.customer, order=order, channel=order.channel, direction="in", body="later")
    TrackingEvent.objects.create(
        carrier="sf", tracking_number="X", status="exception", occurred_at=timezone.now(), shipment=order.shipments.get()
    )
    refund.refresh_from_db()
    assert refund.evidence == before
    assert "later" not in [m["body"] for m in refund.evidence["messages"]]


def test_capture_costs_the_same_for_a_short_and_a_long_story(submit):
    counts = []
    for i, n in enumerate((1, 30)):
        order = OrderFactory(lines=[(f"SKU-{j}", 1, "5.00") for j in range(n)])
        _story(order, n)
        refund = submit(order, key=f"k{i}")
        refund = RefundRequest.objects.select_related("order", "customer", "channel").get(pk=refund.pk)
        with CaptureQueriesContext(connection) as ctx:
            capture_evidence(refund)
        counts.append(len(ctx))
    assert counts[0] == counts[1], counts
    assert counts[0] == 9  # pinned: payment, shipments, events, history x2, messages, order events, lines, address changes
