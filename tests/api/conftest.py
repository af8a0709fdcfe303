import hashlib
import hmac
import json
import secrets
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps
from django.db.models import Sum
from rest_framework.test import APIClient

from orders.models import Carrier, Channel, ChannelKey, Order, OrderLine
from tests.factories import ChannelFactory

# The fixtures' calendar: day 1 is ten days ago, so an order placed on day 1 is always inside
# the return window, whatever the date the tests run on.
DAY_ONE = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=10)


def day(n: int, hour: int = 0, minute: int = 0) -> datetime:
    """Day `n` of the fixtures' calendar, at hour:minute UTC."""
    return DAY_ONE + timedelta(days=n - 1, hours=hour, minutes=minute)


def iso(n: int, hour: int = 0, minute: int = 0) -> str:
    """`day(n, hour, minute)` as the API writes a time: ISO 8601 with a Z."""
    return day(n, hour, minute).strftime("%Y-%m-%dT%H:%M:%SZ")


# Every table the channel API can write to: a 4xx must leave all of them as they were.
WRITABLE = [
    "orders.Customer",
    "orders.Address",
    "orders.Order",
    "orders.OrderLine",
    "orders.OrderEvent",
    "orders.AddressChange",
    "orders.Payment",
    "orders.Shipment",
    "orders.TrackingEvent",
    "orders.CustomerMessage",
    "refunds.RefundRequest",
    "refunds.RefundLine",
    "refunds.RefundEvent",
    "refunds.ReturnParcel",
    "refunds.Payout",
    "notifications.Notification",
]


def db_snapshot() -> dict:
    """Row counts of every writable table, plus the money held on orders and lines."""
    snap = {label: apps.get_model(label).objects.count() for label in WRITABLE}
    snap["held_total"] = Order.objects.aggregate(s=Sum("held_total"))["s"]
    snap["held_quantity"] = OrderLine.objects.aggregate(s=Sum("held_quantity"))["s"]
    snap["states"] = sorted(apps.get_model("refunds.RefundRequest").objects.values_list("pk", "state"))
    return snap


def make_channel(name: str, kind=Channel.Kind.WEB_STORE) -> tuple[Channel, str]:
    key = f"rd_{secrets.token_urlsafe(16)}"
    channel = ChannelFactory(name=name, kind=kind)
    ChannelKey.objects.create(channel=channel, slot=1, key_hash=Channel.hash_key(key), key_prefix=key[:8])
    return channel, key


@pytest.fixture
def channel_and_key(db):
    return make_channel("shop")


@pytest.fixture
def channel(channel_and_key):
    return channel_and_key[0]


@pytest.fixture
def key(channel_and_key):
    return channel_and_key[1]


@pytest.fixture
def other_channel_and_key(db):
    return make_channel("market", kind=Channel.Kind.MARKETPLACE)


@pytest.fixture
def api(key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def carrier(db):
    return Carrier.objects.create(code="sf", name="SF Express", secret=secrets.token_hex(16))


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict:
    """The carrier's headers for `body`: X-Timestamp (now, unless given) and X-Signature."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {"X-Timestamp": ts, "X-Signature": hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()}


def sign_meta(secret: str, body: bytes, timestamp: int | None = None) -> dict:
    """`sign` as Django test client keyword arguments (HTTP_X_...)."""
    return {"HTTP_" + k.upper().replace("-", "_"): v for k, v in sign(secret, body, timestamp).items()}


def tracking_body(**overrides) -> bytes:
    data = {
        "carrier": "sf",
        "tracking_number": "SF9",
        "status": "in_transit",
        "occurred_at": iso(3, 8),
        "location": "Changsha",
        **overrides,
    }
    return json.dumps(data).encode()


def order_body(**overrides) -> dict:
    body = {
        "placed_at": iso(1, 10),
        "currency": "CNY",
        "customer": {"external_id": "C-1", "name": "Li Lei", "phone": "+8613800000000", "email": "li@example.com"},
        "shipping_address": {
            "name": "Li Lei",
            "phone": "+8613800000000",
            "line1": "1 Nanjing Road",
            "city": "Shanghai",
            "postcode": "200000",
            "country": "CN",
        },
        "lines": [{"sku": "SKU-1", "name": "Shirt", "quantity": 2, "unit_price": "29.95"}],
        "shipping_fee": "0.00",
        "payment": {"method": "alipay", "reference": "PAY-1", "amount": "59.90", "paid_at": iso(1, 10, 1)},
        "shipments": [{"carrier": "sf", "tracking_number": "SF1", "shipped_at": iso(2, 10), "delivered_at": None}],
    }
    body.update(overrides)
    return body
