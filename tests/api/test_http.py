"""The channel API through real HTTP against the test server: every endpoint and every
error of api.md, and nothing written on any 4xx."""

import hashlib
import hmac
import json
import re
from decimal import Decimal

import pytest
import requests
from django.conf import settings

from orders.models import AddressChange, Order, Shipment, TrackingEvent
from refunds import services
from refunds.models import RefundRequest, ReturnParcel
from tests.api.conftest import day, db_snapshot, iso, order_body, sign, tracking_body

pytestmark = pytest.mark.e2e


@pytest.fixture
def http(live_server, key):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"

    def call(method, path, *, json_body=None, data=None, headers=None, auth=True):
        h = dict(headers or {})
        if not auth:
            h["Authorization"] = ""
        kwargs = {"headers": h, "timeout": 10}
        if json_body is not None:
            kwargs["json"] = json_body
        if data is not None:
            kwargs["data"] = data
        return session.request(method, f"{live_server.url}{path}", **kwargs)

    return call


def refund_body(**overrides):
    return {
        "order_number": "MKT-1",
        "kind": "return_and_refund",
        "reason": "size_fit",
        "lines": [{"sku": "SKU-1", "quantity": 1}],
        **overrides,
    }


def assert_json_error(response, status):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    return response.json()


def test_without_key_or_with_a_bad_key_answers_401_and_writes_nothing(http):
    before = db_snapshot()
    for headers in (
        {"Authorization": ""},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Token x"},
        {"Authorization": "Bearer a b"},
    ):
        r = http("PUT", "/api/v1/orders/MKT-1/", json_body=order_body(), headers=headers)
        assert "detail" in assert_json_error(r, 401)
        r = http("POST", "/api/v1/refunds/", json_body=refund_body(), headers={**headers, "Idempotency-Key": "k"})
        assert_json_error(r, 401)
        assert_json_error(http("GET", "/api/v1/refunds/", headers=headers), 401)
    assert db_snapshot() == before


def test_order_upsert_creates_then_updates_and_records_an_address_change(http):
    r = http("PUT", "/api/v1/orders/MKT-1/", json_body=order_body())
    assert r.status_code == 201, r.text
    got = r.json()
    assert (got["state"], got["paid_total"], got["refund_status"]) == ("shipped", "59.90", "none")
    assert [ln["sku"] for ln in got["lines"]] == ["SKU-1"]

    before = db_snapshot()
    r = http("PUT", "/api/v1/orders/MKT-1/", json_body=order_body())
    assert r.status_code == 200
    assert db_snapshot() == before, "the same body again writes nothing"

    moved = order_body(shipping_address={"line1": "9 Other Street", "city": "Beijing", "country": "CN"})
    moved["shipments"][0]["delivered_at"] = iso(4, 10)
    r = http("PUT", "/api/v1/orders/MKT-1/", json_body=moved)
    assert r.status_code == 200 and r.json()["state"] == "delivered"
    change = AddressChange.objects.get()
    assert str(change.new_address).startswith("9 Other Street") and str(change.old_address).startswith("1 Nanjing Road")

    r = http("GET", "/api/v1/orders/MKT-1/")
    assert r.status_code == 200 and r.json()["state"] == "delivered"


def test_order_messages_are_recorded(http):
    http("PUT", "/api/v1/orders/MKT-1/", json_body=order_body())
    r = http(
        "POST",
        "/api/v1/orders/MKT-1/messages/",
        json_body={"direction": "in", "body": "where is it?", "sent_at": iso(3, 10)},
    )
    assert r.status_code == 201 and r.json()["body"] == "where is it?"
    before = db_snapshot()
    assert "direction" in assert_json_error(
        http("POST", "/api/v1/orders/MKT-1/messages/", json_body={"direction": "sideways", "body": "x"}), 400
    )
    assert_json_error(http("POST", "/api/v1/orders/NOPE/messages/", json_body={"direction": "in", "body": "x"}), 404)
    assert db_snapshot() == before


def test_order_upsert_bad_bodies_answer_400_per_field(http):
    # The long tail of bad bodies is in test_validation.py (in-process); here a few go over HTTP.
    cases = [("currency", {"currency": "yuan"}), ("lines", {"lines": []}), ("surprise", {"surprise": 1})]
    before = db_snapshot()
    for field, change in cases:
        errors = assert_json_error(http("PUT", "/api/v1/orders/MKT-1/", json_body=order_body(**change)), 400)
        assert field in errors
    assert db_snapshot() == before


def test_order_lines_held_by_a_request_cannot_change(http, channel):
    http("PUT", "/api/v1/orders/MKT-1/", json_body=order_body())
    r = http("POST", "/api/v1/refunds/", json_body=refund_body(), headers={"Idempotency-Key": "k1"})
    assert r.status_code == 201
    changed = order_body()
    changed["lines"][0]["quantity"] = 1
    changed["payment"]["amount"] = "29.95"
    before = db_snapshot()
    errors = assert_json_error(http("PUT", "/api/v1/orders/MKT-1/", json_body=changed), 400)
    assert "lines" in errors
    assert db_snapshot() == before


def test_refund_create_replay_and_conflict(http):
    http("PUT", "/api/v1/orders/MKT-1/", json_body=order_body())
    r = http("POST", "/api/v1/refunds/", json_body=refund_body(), headers={"Idempotency-Key": "k1"})
    assert r.status_code == 201, r.text
    got = r.json()
    assert set(got) >= {
        "id",
        "number",
        "state",
        "order_number",
        "kind",
        "reason",
        "lines",
        "amount_requested",
        "currency",
        "refund_method",
        "created_at",
        "url",
    }
    assert got["lines"] == [{"sku": "SKU-1", "name": "Shirt", "quantity": 1, "amount": "29.95"}]
    assert (got["amount_requested"], got["currency"], got["refund_method"]) == ("29.95", "CNY", "original_payment")
    # The 201 answers what intake wrote; q2 runs inline here, so reading it back shows the
    # evaluation that ran after commit.
    assert got["state"] == "submitted" and [e["action"] for e in got["timeline"]] == ["submit"]
    assert http("GET", f"/api/v1/refunds/{got['id']}/").json()["state"] == "awaiting_return"
    assert got["url"].endswith(f"/api/v1/refunds/{got['id']}/")

    before = db_snapshot()
    # Same key, same body (keys in another order): the same request, 200.
    reordered = json.dumps(dict(reversed(list(refund_body().items()))))
    r = http("POST", "/api/v1/refunds/", data=reordered, headers={"Idempotency-Key": "k1", "Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["id"] == got["id"]
    r = http("POST", "/api/v1/refunds/", json_body=refund_body(reason="damaged"), headers={"Idempotency-Key": "k1"})
    assert_json_error(r, 409)
    assert db_snapshot() == before


def test_refund_create_errors_write_nothing(http):
    http("PUT", "/api/v1/orders/MKT-1/", json_body=order_body())
    cases = [
        (refund_body(), {}, 400, "Idempotency-Key"),
        (refund_body(order_number="NOPE"), {"Idempotency-Key": "x"}, 404, "detail"),
        (refund_body(lines=[{"sku": "SKU-1", "quantity": 3}]), {"Idempotency-Key": "x"}, 400, "lines"),
        (refund_body(lines=[{"sku": "SKU-1", "quantity": 0}]), {"Idempotency-Key": "x"}, 400, "lines"),
        (refund_body(lines=[{"sku": "NOPE", "quantity": 1}]), {"Idempotency-Key": "x"}, 400, "lines"),
        (refund_body(reason="bored"), {"Idempotency-Key": "x"}, 400, "reason"),
        (refund_body(refund_method="cash"), {"Idempotency-Key": "x"}, 400, "refund_method"),
    ]
    before = db_snapshot()
    for body, headers, status, field in cases:
        errors = assert_json_error(http("POST", "/api/v1/refunds/", json_body=body, headers=headers), status)
        assert field in errors, (body, errors)
    assert db_snapshot() == before


def test_malformed_and_non_utf8_bodies_are_400_json(http):
    http("PUT", "/api/v1/orders/MKT-1/", json_body=order_body())
    before = db_snapshot()
    for raw in (b"{not json", b"\xff\xfe\x00garbage", b'{"order_number": "MKT-1", "kind": '):
        r = http("POST", "/api/v1/refunds/", data=raw, headers={"Idempotency-Key": "x", "Content-Type": "application/json"})
        assert_json_error(r, 400)
    r = http(
        "POST",
        "/api/v1/refunds/",
        data="order_number=MKT-1",
        headers={"Idempotency-Key": "x", "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_json_error(r, 415)
    assert db_snapshot() == before


def test_a_body_over_the_upload_limit_answers_413_json_on_every_endpoint_and_writes_nothing(http, live_server, carrier):
    http("PUT", "/api/v1/orders/MKT-1/", json_body=order_body())
    refund_id = http("POST", "/api/v1/refunds/", json_body=refund_body(), headers={"Idempotency-Key": "k1"}).json()["id"]
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    # Well-formed bodies, refused for their size alone: one byte over the limit.
    padded = {"order_number": "MKT-1", "kind": "refund_only", "reason": "size_fit", "customer_note": ""}
    padded["customer_note"] = "x" * (limit + 1 - len(json.dumps(padded)))
    raw = json.dumps(padded).encode()
    assert len(raw) == limit + 1
    expected = {"detail": f"The request body is larger than the {limit} bytes this API accepts."}
    json_type = {"Content-Type": "application/json"}
    before = db_snapshot()
    for method, path in (
        ("PUT", "/api/v1/orders/MKT-1/"),
        ("POST", "/api/v1/orders/MKT-1/messages/"),
        ("POST", "/api/v1/refunds/"),
        ("POST", f"/api/v1/refunds/{refund_id}/withdraw/"),
        ("POST", f"/api/v1/refunds/{refund_id}/messages/"),
    ):
        r = http(method, path, data=raw, headers={**json_type, "Idempotency-Key": "big"})
        assert assert_json_error(r, 413) == expected, path
    # The carrier webhook, unauthenticated and signed with the carrier's own secret.
    headers = {**json_type, **sign(carrier.secret, raw)}
    r = requests.post(f"{live_server.url}/api/v1/tracking-events/", data=raw, headers=headers, timeout=10)
    assert assert_json_error(r, 413) == expected
    assert db_snapshot() == before
    # At the limit the body is read: refused for its note, not its size, on the same connection.
    at_limit = raw[: len(raw) - 3] + b'"}'
    assert len(at_limit) == limit
    r = http("POST", "/api/v1/refunds/", data=at_limit, headers={**json_type, "Idempotency-Key": "big"})
    assert "customer_note" in assert_json_error(r, 400)
    assert db_snapshot() == before


def test_json_nested_too_deeply_answers_400_on_the_api_and_the_webhook(http, live_server, carrier):
    http("PUT", "/api/v1/orders/MKT-1/", json_body=order_body())
    deep = ("[" * 50_000 + "]" * 50_000).encode()
    before = db_snapshot()
    r = http("POST", "/api/v1/refunds/", data=deep, headers={"Content-Type": "application/json", "Idempotency-Key": "x"})
    assert "JSON nested too deeply" in assert_json_error(r, 400)["detail"]
    r = http("PUT", "/api/v1/orders/MKT-1/", data=deep, headers={"Content-Type": "application/json"})
    assert "JSON nested too deeply" in assert_json_error(r, 400)["detail"]
    r = requests.post(
        f"{live_server.url}/api/v1/tracking-events/",
        data=deep,
        headers={"Content-Type": "application/json", **sign(carrier.secret, deep)},
        timeout=10,
    )
    assert "JSON nested too deeply" in assert_json_error(r, 400)["detail"]
    assert db_snapshot() == before


def test_a_line_past_the_money_column_answers_400_naming_the_line(http):
    body = order_body(lines=[{"sku": "SKU-1", "quantity": 1_000_000, "unit_price": "9999999999.99"}])
    before = db_snapshot()
    errors = assert_json_error(http("PUT", "/api/v1/orders/MKT-1/", json_body=body), 400)
    assert "unit_price" in errors["lines"]["0"]
    assert db_snapshot() == before


def test_another_channels_objects_answer_404(http, other_channel_and_key, live_server):
    other, other_key = other_channel_and_key
    http("PUT", "/api/v1/orders/MKT-1/", json_body=order_body())
    mine = http("POST", "/api/v1/refunds/", json_body=refund_body(), headers={"Idempotency-Key": "k1"}).json()
    as_other = {"Authorization": f"Bearer {other_key}"}
    before = db_snapshot()
    assert_json_error(http("GET", "/api/v1/orders/MKT-1/", headers=as_other), 404)
    assert_json_error(http("GET", f"/api/v1/refunds/{mine['id']}/", headers=as_other), 404)
    for action in ("withdraw", "alternative/accept", "alternative/decline"):
        assert_json_error(http("POST", f"/api/v1/refunds/{mine['id']}/{action}/", json_body={}, headers=as_other), 404)
    assert_json_error(http("POST", f"/api/v1/refunds/{mine['id']}/messages/", json_body={"body": "hi"}, headers=as_other), 404)
    r = http(
        "POST",
        f"/api/v1/refunds/{mine['id']}/return-shipment/",
        json_body={"carrier": "sf", "tracking_number": "X"},
        headers=as_other,
    )
    assert_json_error(r, 404)
    r = http("POST", "/api/v1/refunds/", json_body=refund_body(), headers={**as_other, "Idempotency-Key": "k1"})
    assert_json_error(r, 404)
    assert http("GET", "/api/v1/refunds/", headers=as_other).json()["count"] == 0
    assert db_snapshot() == before


def test_detail_list_withdraw_and_disallowed_transitions(http):
    http("PUT", "/api/v1/orders/MKT-1/", json_body=order_body())
    created = http("POST", "/api/v1/refunds/", json_body=refund_body(), headers={"Idempotency-Key": "k1"}).json()
    detail = http("GET", f"/api/v1/refunds/{created['id']}/").json()
    assert detail["state"] == "awaiting_return"
    assert detail["decision"] == {"decided_by": "system", "reason": "all rules passed", "alternative": None}
    assert set(detail["return_instructions"]) >= {"return_code", "address", "deadline"}
    assert [e["state"] for e in detail["timeline"]] == ["submitted", "approved", "awaiting_return"]

    listing = http("GET", "/api/v1/refunds/?order_number=MKT-1&state=awaiting_return").json()
    assert [r["id"] for r in listing["results"]] == [created["id"]]
    assert http("GET", "/api/v1/refunds/?state=refunded").json()["count"] == 0
    assert "state" in assert_json_error(http("GET", "/api/v1/refunds/?state=bogus"), 400)

    before = db_snapshot()
    assert_json_error(http("POST", f"/api/v1/refunds/{created['id']}/alternative/accept/", json_body={}), 409)
    assert_json_error(http("POST", f"/api/v1/refunds/{created['id']}/alternative/decline/", json_body={}), 409)
    assert_json_error(http("POST", f"/api/v1/refunds/{created['id']}/messages/", json_body={"body": "hello"}), 409)
    assert_json_error(http("GET", "/api/v1/refunds/999999/"), 404)
    assert db_snapshot() == before

    r = http("POST", f"/api/v1/refunds/{created['id']}/withdraw/", json_body={})
    assert r.status_code == 200 and r.json()["state"] == "withdrawn"
    assert Order.objects.get(number="MKT-1").held_total == Decimal("0.00")
    before = db_snapshot()
    assert_json_error(http("POST", f"/api/v1/refunds/{created['id']}/withdraw/", json_body={}), 409)
    r = http("POST", f"/api/v1/refunds/{created['id']}/return-shipment/", json_body={"carrier": "sf", "tracking_number": "SF9"})
    assert_json_error(r, 409)
    assert db_snapshot() == before


def test_return_shipment_then_carrier_scan(http, live_server, carrier):
    http("PUT", "/api/v1/orders/MKT-1/", json_body=order_body())
    created = http("POST", "/api/v1/refunds/", json_body=refund_body(), headers={"Idempotency-Key": "k1"}).json()
    before = db_snapshot()
    errors = assert_json_error(
        http("POST", f"/api/v1/refunds/{created['id']}/return-shipment/", json_body={"carrier": "sf"}), 400
    )
    assert "tracking_number" in errors
    assert db_snapshot() == before
    r = http("POST", f"/api/v1/refunds/{created['id']}/return-shipment/", json_body={"carrier": "sf", "tracking_number": "SF9"})
    assert r.status_code == 200 and r.json()["state"] == "return_in_transit"
    assert r.json()["return_instructions"]["tracking_number"] == "SF9"

    body = tracking_body(tracking_number="SF9")
    r = requests.post(
        f"{live_server.url}/api/v1/tracking-events/",
        data=body,
        headers={**sign(carrier.secret, body), "Content-Type": "application/json"},
        timeout=10,
    )
    assert r.status_code == 201 and r.json()["matched"] is True
    assert TrackingEvent.objects.get().return_parcel == ReturnParcel.objects.get()


def test_customer_answer_resumes_review(http, channel, support):
    http("PUT", "/api/v1/orders/MKT-1/", json_body=order_body())
    created = http(
        "POST", "/api/v1/refunds/", json_body=refund_body(reason="not_as_described"), headers={"Idempotency-Key": "k1"}
    ).json()
    assert http("GET", f"/api/v1/refunds/{created['id']}/").json()["state"] == "under_review"
    services.refund_ask_customer(refund_id=created["id"], actor=support, question="A photo, please?")
    before = db_snapshot()
    assert "body" in assert_json_error(http("POST", f"/api/v1/refunds/{created['id']}/messages/", json_body={"body": ""}), 400)
    assert db_snapshot() == before
    r = http("POST", f"/api/v1/refunds/{created['id']}/messages/", json_body={"body": "here it is"})
    assert r.status_code == 200 and r.json()["state"] == "under_review"
    assert RefundRequest.objects.get().customer.messages.filter(body="here it is").exists()


def test_tracking_webhook_signature_replay_and_delivery(live_server, carrier, channel, key):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    session.put(f"{live_server.url}/api/v1/orders/MKT-1/", json=order_body(), timeout=10)
    url = f"{live_server.url}/api/v1/tracking-events/"
    body = tracking_body(tracking_number="SF1", status="delivered", occurred_at=iso(4, 9))
    before = db_snapshot()
    good = sign(carrier.secret, body)
    for headers in (
        {},
        {"X-Timestamp": good["X-Timestamp"]},
        {"X-Timestamp": good["X-Timestamp"], "X-Signature": ""},
        {"X-Timestamp": good["X-Timestamp"], "X-Signature": "0" * 64},
        sign("wrong", body),
        {**sign(carrier.secret, body + b" "), "X-Timestamp": good["X-Timestamp"]},
        {"X-Signature": good["X-Signature"]},  # no timestamp
        {**good, "X-Timestamp": str(int(good["X-Timestamp"]) + 1)},  # the timestamp is signed
        {**good, "X-Timestamp": "-" + good["X-Timestamp"]},
        # The signature of the body alone, as before timestamps were signed.
        {"X-Timestamp": good["X-Timestamp"], "X-Signature": hmac.new(carrier.secret.encode(), body, hashlib.sha256).hexdigest()},
    ):
        r = requests.post(url, data=body, headers={"Content-Type": "application/json", **headers}, timeout=10)
        assert_json_error(r, 401)
    assert_json_error(requests.post(url, data=b"\xff", headers=sign(carrier.secret, b"\xff"), timeout=10), 401)
    assert db_snapshot() == before

    headers = {**good, "Content-Type": "application/json"}
    assert requests.post(url, data=body, headers=headers, timeout=10).status_code == 201
    assert Order.objects.get(number="MKT-1").state == "delivered"
    shipment = Shipment.objects.get(tracking_number="SF1")
    assert (shipment.last_status, shipment.delivered_at.isoformat()) == ("delivered", day(4, 9).isoformat())
    before = db_snapshot()
    r = requests.post(url, data=body, headers=headers, timeout=10)
    assert r.status_code == 200
    assert db_snapshot() == before

    bad = tracking_body(status="lost")
    errors = assert_json_error(requests.post(url, data=bad, headers=sign(carrier.secret, bad), timeout=10), 400)
    assert "status" in errors
    assert db_snapshot() == before


def test_schema_and_docs_are_served(live_server):
    r = requests.get(f"{live_server.url}/api/schema/?format=json", timeout=10)
    assert r.status_code == 200
    paths = r.json()["paths"]
    for path in (
        "/api/v1/orders/{order_number}/",
        "/api/v1/refunds/",
        "/api/v1/refunds/{refund_id}/",
        "/api/v1/tracking-events/",
    ):
        assert path in paths
    assert set(paths["/api/v1/refunds/"]["post"]["responses"]) == {"200", "201", "400", "401", "404", "409", "429"}
    # The limits are documented: each operation's 429 with Retry-After, their values in the description.
    assert "Retry-After" in paths["/api/v1/orders/{order_number}/"]["put"]["responses"]["429"]["headers"]
    description = r.json()["info"]["description"]
    assert all(word in description for word in ("**Limits.**", "fail to authenticate", "429", "Retry-After")), description
    assert "X-Timestamp" in paths["/api/v1/tracking-events/"]["post"]["description"] + str(
        paths["/api/v1/tracking-events/"]["post"]["parameters"]
    )
    docs = requests.get(f"{live_server.url}/api/docs/", timeout=10)
    assert docs.status_code == 200
    # Swagger UI's own files come from this server (drf-spectacular-sidecar), never a CDN.
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css|png))"', docs.text)
    assert any("swagger-ui-bundle" in a for a in assets), docs.text
    for asset in assets:
        assert asset.startswith("/"), asset
        assert requests.get(f"{live_server.url}{asset}", timeout=10).status_code == 200, asset
