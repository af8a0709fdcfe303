"""Tracking numbers are unique per channel: channel B can neither learn that channel A's
number exists nor block A's upsert by claiming it first. A carrier's scan of the number
counts for every channel's shipment of it."""

import pytest
import requests
from django.db import IntegrityError, transaction

from orders.models import Order, Shipment, TrackingEvent
from refunds.evidence import capture_evidence
from refunds.models import RefundRequest
from tests.api.conftest import db_snapshot, iso, order_body, sign, tracking_body

pytestmark = pytest.mark.e2e


def put(live_server, key, number, body):
    return requests.put(
        f"{live_server.url}/api/v1/orders/{number}/", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10
    )


def shipments(number):
    return [{"carrier": "sf", "tracking_number": number, "shipped_at": iso(2, 10), "delivered_at": None}]


def test_channel_b_can_neither_learn_of_nor_block_channel_as_tracking_number(live_server, key, other_channel_and_key):
    other_channel, other_key = other_channel_and_key
    # A's order ships SF1.
    a = put(live_server, key, "A-1", order_body(shipments=shipments("SF1")))
    assert a.status_code == 201, a.text

    # B reports the same number on its own order: answered like any new number, nothing said
    # about A's order, and A's shipment untouched.
    a_shipment = Shipment.objects.get(order__number="A-1")
    b = put(live_server, other_key, "B-1", order_body(shipments=shipments("SF1")))
    assert b.status_code == 201, b.text
    assert "another order" not in b.text and "A-1" not in b.text
    assert [s["tracking_number"] for s in b.json()["shipments"]] == ["SF1"]
    assert Shipment.objects.get(pk=a_shipment.pk).order.number == "A-1"
    # The same number unknown to both answers B exactly alike: B learns nothing from the answer.
    fresh = put(live_server, other_key, "B-2", order_body(shipments=shipments("SF-NOBODY")))
    assert fresh.status_code == b.status_code
    assert set(fresh.json()) == set(b.json())

    # B claimed SF2 first; A's later upsert of SF2 is not blocked.
    assert put(live_server, other_key, "B-3", order_body(shipments=shipments("SF2"))).status_code == 201
    a2 = put(live_server, key, "A-2", order_body(shipments=shipments("SF2")))
    assert a2.status_code == 201, a2.text
    assert Shipment.objects.filter(tracking_number="SF2").count() == 2
    # And updating A's order with its own number stays fine.
    assert put(live_server, key, "A-2", order_body(shipments=shipments("SF2"))).status_code == 200
    # B can't read A's order either.
    r = requests.get(f"{live_server.url}/api/v1/orders/A-1/", headers={"Authorization": f"Bearer {other_key}"}, timeout=10)
    assert r.status_code == 404


def test_within_one_channel_a_number_still_belongs_to_one_order(live_server, key):
    assert put(live_server, key, "A-1", order_body(shipments=shipments("SF1"))).status_code == 201
    before = db_snapshot()
    r = put(live_server, key, "A-2", order_body(customer={"external_id": "C-2"}, shipments=shipments("SF1")))
    assert r.status_code == 400 and "belongs to another order" in str(r.json()["shipments"])
    assert db_snapshot() == before


def test_the_database_refuses_a_number_twice_in_one_channel_but_not_across_channels(
    live_server, key, channel, other_channel_and_key
):
    put(live_server, key, "A-1", order_body(shipments=shipments("SF1")))
    order = Order.objects.get(number="A-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Shipment.objects.create(order=order, carrier="sf", tracking_number="SF1")
    other_channel, other_key = other_channel_and_key
    put(live_server, other_key, "B-1", order_body(shipments=[]))
    other_order = Order.objects.get(number="B-1")
    shipment = Shipment.objects.create(order=other_order, carrier="sf", tracking_number="SF1")
    assert shipment.channel_id == other_channel.pk  # copied from the order


def test_a_carrier_scan_counts_for_each_channels_shipment_and_evidence(live_server, key, other_channel_and_key, carrier):
    _, other_key = other_channel_and_key
    # B claims the number before A knows it; then the carrier's scan, then A.
    assert put(live_server, other_key, "B-1", order_body(shipments=shipments("SF1"))).status_code == 201
    body = tracking_body(tracking_number="SF1", status="delivered", occurred_at=iso(4, 9))
    r = requests.post(
        f"{live_server.url}/api/v1/tracking-events/",
        data=body,
        headers={"Content-Type": "application/json", **sign(carrier.secret, body)},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    assert put(live_server, key, "A-1", order_body(shipments=shipments("SF1"))).status_code == 201
    for number in ("A-1", "B-1"):
        order = Order.objects.get(number=number)
        assert order.state == "delivered", number
        assert order.shipments.get().last_status == "delivered"
    assert TrackingEvent.objects.count() == 1
    # A's refund evidence lists the scan although the event points to B's shipment.
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    created = session.post(
        f"{live_server.url}/api/v1/refunds/",
        json={
            "order_number": "A-1",
            "kind": "return_and_refund",
            "reason": "size_fit",
            "lines": [{"sku": "SKU-1", "quantity": 1}],
        },
        headers={"Idempotency-Key": "k1"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    evidence = capture_evidence(RefundRequest.objects.get(pk=created.json()["id"]))
    (shipment,) = evidence["shipments"]
    assert [e["status"] for e in shipment["events"]] == ["delivered"]
