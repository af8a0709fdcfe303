"""orders.services: the upsert, messages and carrier scans behind the channel API."""

from decimal import Decimal

import pytest

from config.actors import Actor
from orders import services
from orders.api.serializers import OrderUpsertSerializer
from orders.models import AddressChange, Carrier, Order, OrderEvent, Shipment, TrackingEvent
from refunds import services as refund_services
from refunds.errors import NotFound, RefundValidationError
from refunds.models import RefundRequest
from tests.api.conftest import day, db_snapshot, iso, order_body

pytestmark = pytest.mark.django_db


def upsert(channel, body, number="MKT-1"):
    s = OrderUpsertSerializer(data=body)
    s.is_valid(raise_exception=True)
    return services.order_upsert(channel=channel, actor=Actor.for_channel(channel), number=number, data=s.validated_data)


def test_new_order_walks_forward_through_its_history(channel):
    body = order_body()
    body["shipments"][0]["delivered_at"] = iso(4, 10)
    order, created = upsert(channel, body)
    assert created and order.state == "delivered"
    assert list(OrderEvent.objects.filter(order=order).order_by("pk").values_list("from_state", "to_state")) == [
        ("", "pending_payment"),
        ("pending_payment", "paid"),
        ("paid", "shipped"),
        ("shipped", "delivered"),
    ]
    assert order.delivered_at == day(4, 10)
    assert order.paid_total == Decimal("59.90")


def test_same_body_twice_writes_nothing_and_never_moves_backwards(channel):
    body = order_body()
    body["shipments"][0]["delivered_at"] = iso(4, 10)
    upsert(channel, body)
    before = db_snapshot()
    order, created = upsert(channel, body)
    assert not created and db_snapshot() == before
    # An older view of the order (not yet shipped) does not move it back.
    order, _ = upsert(channel, order_body(shipments=[]))
    assert order.state == "delivered"


def test_address_change_is_recorded_once(channel):
    upsert(channel, order_body())
    moved = order_body(shipping_address={"line1": "9 Other Street", "city": "Beijing"})
    upsert(channel, moved)
    upsert(channel, moved)
    assert AddressChange.objects.count() == 1


def test_risk_hook_runs_after_commit(channel, monkeypatch, django_capture_on_commit_callbacks):
    seen = []
    monkeypatch.setattr("risk.services.customer_changed", lambda *, customer_id: seen.append(customer_id))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        order, _ = upsert(channel, order_body())
    assert seen == [], "not before the commit"
    for cb in callbacks:
        cb()
    assert order.customer_id in seen


def test_lines_can_be_added_and_changed_until_a_request_holds_them(channel):
    order, _ = upsert(channel, order_body())
    body = order_body(
        lines=[{"sku": "SKU-1", "quantity": 2, "unit_price": "29.95"}, {"sku": "SKU-2", "quantity": 1, "unit_price": "10.00"}]
    )
    body["payment"]["amount"] = "69.90"
    order, _ = upsert(channel, body)
    assert sorted(order.lines.values_list("sku", "line_total")) == [("SKU-1", Decimal("59.90")), ("SKU-2", Decimal("10.00"))]
    refund_services.refund_submit(
        actor=Actor.for_channel(channel),
        channel=channel,
        idempotency_key="k",
        order_number="MKT-1",
        kind="return_and_refund",
        reason="size_fit",
        lines=[refund_services.LineRequest("SKU-2", 1)],
    )
    body["lines"][1]["unit_price"] = "12.00"
    before = db_snapshot()
    with pytest.raises(RefundValidationError) as err:
        upsert(channel, body)
    assert "lines" in err.value.errors
    dropped = order_body()
    with pytest.raises(RefundValidationError):
        upsert(channel, dropped)  # SKU-2 is missing but a request names it
    assert db_snapshot() == before


def test_kept_carrier_events_are_matched_when_the_shipment_appears(channel):
    sf = Carrier.objects.create(code="sf", secret="s")
    at = day(4, 9)
    event, created = services.tracking_event_record(carrier=sf, tracking_number="SF1", status="delivered", occurred_at=at)
    assert created and event.shipment_id is None and event.return_parcel_id is None
    order, _ = upsert(channel, order_body())
    event.refresh_from_db()
    shipment = Shipment.objects.get(tracking_number="SF1")
    assert event.shipment == shipment
    assert shipment.delivered_at == at and shipment.last_status == "delivered"
    assert order.state == "delivered"


def test_a_scan_replay_is_a_no_op(channel):
    sf = Carrier.objects.create(code="sf", secret="s")
    upsert(channel, order_body())
    at = day(3, 9)
    services.tracking_event_record(carrier=sf, tracking_number="SF1", status="in_transit", occurred_at=at)
    before = db_snapshot()
    _, created = services.tracking_event_record(carrier=sf, tracking_number="SF1", status="in_transit", occurred_at=at)
    assert not created and db_snapshot() == before
    # An older scan arriving late does not overwrite the newer status.
    services.tracking_event_record(carrier=sf, tracking_number="SF1", status="picked_up", occurred_at=day(2))
    assert Shipment.objects.get().last_status == "in_transit"
    assert Order.objects.get().state == "shipped"


def test_return_parcel_scans_move_the_request_and_early_scans_are_matched(channel, django_capture_on_commit_callbacks):
    sf = Carrier.objects.create(code="sf", secret="s")
    upsert(channel, order_body())
    actor = Actor.for_channel(channel)
    with django_capture_on_commit_callbacks(execute=True):
        a, _ = refund_services.refund_submit(
            actor=actor,
            channel=channel,
            idempotency_key="a",
            order_number="MKT-1",
            kind="return_and_refund",
            reason="size_fit",
            lines=[refund_services.LineRequest("SKU-1", 1)],
        )
        b, _ = refund_services.refund_submit(
            actor=actor,
            channel=channel,
            idempotency_key="b",
            order_number="MKT-1",
            kind="return_and_refund",
            reason="size_fit",
            lines=[refund_services.LineRequest("SKU-1", 1)],
        )
    assert RefundRequest.objects.get(pk=a.pk).state == "awaiting_return"
    # The carrier saw parcel R1 before the customer told us about it.
    early, _ = refund_services.carrier_scan_record(carrier=sf, tracking_number="R1", status="picked_up", occurred_at=day(5))
    assert RefundRequest.objects.get(pk=a.pk).state == "awaiting_return"
    refund_services.return_ship(refund_id=a.pk, actor=actor, carrier="sf", tracking_number="R1")
    early.refresh_from_db()
    assert early.return_parcel.request_id == a.pk

    # B's parcel is known (recorded without the API, e.g. by support) before the scan.
    from refunds.models import ReturnParcel

    ReturnParcel.objects.filter(request=b).update(carrier="sf", tracking_number="R2")
    refund_services.carrier_scan_record(carrier=sf, tracking_number="R2", status="in_transit", occurred_at=day(5))
    assert RefundRequest.objects.get(pk=b.pk).state == "return_in_transit"
    # A delivered scan of a return parcel does not move it again (the warehouse scans it in).
    refund_services.carrier_scan_record(carrier=sf, tracking_number="R2", status="delivered", occurred_at=day(6))
    assert RefundRequest.objects.get(pk=b.pk).state == "return_in_transit"
    assert TrackingEvent.objects.filter(return_parcel__request=b).count() == 2


def test_message_for_an_unknown_order_is_not_found(channel):
    with pytest.raises(NotFound):
        services.customer_message_record(channel=channel, order_number="NOPE", direction="in", body="x")


def test_create_channel_and_carrier_print_the_secret_alone_on_the_last_line(db, capsys):
    from django.core.management import call_command

    from orders.models import Channel

    call_command("create_channel", "web", kind="web_store")
    key = capsys.readouterr().out.strip().splitlines()[-1]
    (stored,) = Channel.objects.get(name="web").keys.all()
    assert stored.key_hash == Channel.hash_key(key) and key not in (stored.key_hash, stored.key_prefix)
    call_command("create_carrier", "yto")
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    assert Carrier.objects.get(code="yto").secret == secret and len(secret) == 64


def test_a_tracking_number_of_another_order_is_refused(channel):
    upsert(channel, order_body())
    before = db_snapshot()
    with pytest.raises(RefundValidationError) as err:
        upsert(channel, order_body(customer={"external_id": "C-9"}), number="MKT-2")
    assert "shipments" in err.value.errors
    assert db_snapshot() == before
