"""The long tail of bad bodies, in-process (test_http.py covers each kind over real HTTP):
every one answers 400 with the field named (or a sentence when the body can't be read), and
nothing is written."""

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from rest_framework.exceptions import ValidationError
from rest_framework.test import APIClient

from orders.api import parsers
from orders.api.fields import MAX_QUANTITY
from orders.api.parsers import MAX_JSON_DEPTH
from orders.api.serializers import LINE_TOTAL_MAX, LINES_TOTAL_MAX
from orders.models import OrderLine
from refunds.api.serializers import RefundCreateSerializer
from refunds.api.views import CREATE_BODY
from refunds.models import RefundRequest
from tests.api.conftest import db_snapshot, order_body, sign_meta

pytestmark = pytest.mark.django_db


def refund_body(**overrides):
    return {
        "order_number": "MKT-1",
        "kind": "refund_only",
        "reason": "size_fit",
        "lines": [{"sku": "SKU-1", "quantity": 1}],
        **overrides,
    }


@pytest.fixture
def order(api):
    assert api.put("/api/v1/orders/MKT-1/", order_body(), format="json").status_code == 201


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.pop("customer"), "customer"),
        (lambda b: b["customer"].pop("external_id"), "customer"),
        (lambda b: b["customer"].update(email="not-an-email"), "customer"),
        (lambda b: b.update(currency="yuan"), "currency"),
        (lambda b: b.update(currency=None), "currency"),
        (lambda b: b.update(placed_at="yesterday"), "placed_at"),
        (lambda b: b.update(placed_at="99999-01-01T00:00:00Z"), "placed_at"),
        (lambda b: b.update(lines=[]), "lines"),
        (lambda b: b.update(lines="SKU-1"), "lines"),
        (lambda b: b["lines"].append(dict(b["lines"][0])), "lines"),
        (lambda b: b["lines"][0].update(quantity=0), "lines"),
        (lambda b: b["lines"][0].update(quantity=-3), "lines"),
        (lambda b: b["lines"][0].update(quantity="two"), "lines"),
        (lambda b: b["lines"][0].update(quantity=10**30), "lines"),
        (lambda b: b["lines"][0].update(quantity=1.5), "lines"),
        (lambda b: b["lines"][0].update(unit_price="1e30"), "lines"),
        (lambda b: b["lines"][0].update(unit_price="99999999999999.99"), "lines"),
        (lambda b: b["lines"][0].update(unit_price="NaN"), "lines"),
        (lambda b: b["lines"][0].update(unit_price=29.95), "lines"),
        (lambda b: b["lines"][0].update(unit_price="29.955"), "lines"),
        (lambda b: b["lines"][0].update(sku="x" * 65), "lines"),
        (lambda b: b["lines"][0].update(sku="bad\x00sku"), "lines"),
        (lambda b: b["lines"][0].update(colour="red"), "lines"),
        (lambda b: b.update(surprise=1), "surprise"),
        (lambda b: b["payment"].update(amount="-1.00"), "payment"),
        (lambda b: b["payment"].pop("reference"), "payment"),
        (lambda b: b["shipments"][0].update(shipped_at="soon"), "shipments"),
        (lambda b: b["shipments"].append(dict(b["shipments"][0])), "shipments"),
        (lambda b: b["shipping_address"].update(country="China"), "shipping_address"),
        (lambda b: b.update(shipping_fee={"amount": 1}), "shipping_fee"),
    ],
)
def test_bad_order_bodies(api, mutate, field):
    body = order_body()
    mutate(body)
    before = db_snapshot()
    r = api.put("/api/v1/orders/MKT-1/", body, format="json")
    assert r.status_code == 400, r.content
    assert field in r.json()
    assert db_snapshot() == before


def test_order_number_too_long(api):
    before = db_snapshot()
    r = api.put(f"/api/v1/orders/{'9' * 65}/", order_body(), format="json")
    assert r.status_code == 400 and "order_number" in r.json()
    assert db_snapshot() == before


def test_payment_below_what_is_refunded_or_held(api, order):
    assert api.post("/api/v1/refunds/", refund_body(), format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 201
    body = order_body()
    body["payment"]["amount"] = "10.00"
    before = db_snapshot()
    r = api.put("/api/v1/orders/MKT-1/", body, format="json")
    assert r.status_code == 400 and "payment" in r.json()
    assert db_snapshot() == before


def test_another_customer_for_the_same_order_is_refused(api, order):
    body = order_body(customer={"external_id": "C-2"})
    before = db_snapshot()
    r = api.put("/api/v1/orders/MKT-1/", body, format="json")
    assert r.status_code == 400 and "customer" in r.json()
    assert db_snapshot() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (refund_body(lines=[{"sku": "SKU-1", "quantity": 3}]), "lines"),
        (refund_body(lines=[{"sku": "SKU-1", "quantity": 0}]), "lines"),
        (refund_body(lines=[{"sku": "SKU-1", "quantity": -1}]), "lines"),
        (refund_body(lines=[{"sku": "SKU-1", "quantity": "1"}, {"sku": "SKU-1", "quantity": 1}]), "lines"),
        (refund_body(lines=[{"sku": "SKU-1", "quantity": 99999999999999999999999}]), "lines"),
        (refund_body(lines=[{"sku": "NOPE", "quantity": 1}]), "lines"),
        (refund_body(lines=[]), "lines"),
        (refund_body(lines=None), "lines"),
        (refund_body(lines=[{"quantity": 1}]), "lines"),
        (refund_body(reason="bored"), "reason"),
        (refund_body(reason=["size_fit"]), "reason"),
        (refund_body(kind="swap"), "kind"),
        (refund_body(refund_method="cash"), "refund_method"),
        (refund_body(order_number=""), "order_number"),
        (refund_body(order_number={"a": 1}), "order_number"),
        (refund_body(customer_note="x" * 2001), "customer_note"),
        (refund_body(extra=True), "extra"),
        ("just a string", "non_field_errors"),
        (None, "order_number"),  # an empty body
    ],
)
def test_bad_refund_bodies(api, order, body, field):
    before = db_snapshot()
    r = api.post("/api/v1/refunds/", body, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert r.status_code == 400, r.content
    assert field in r.json()
    assert db_snapshot() == before


def test_idempotency_key_longer_than_128_is_refused(api, order):
    before = db_snapshot()
    r = api.post("/api/v1/refunds/", refund_body(), format="json", HTTP_IDEMPOTENCY_KEY="k" * 129)
    assert r.status_code == 400 and "Idempotency-Key" in r.json()
    assert db_snapshot() == before


def test_whole_order_when_lines_are_left_out(api, order):
    body = refund_body()
    body.pop("lines")
    r = api.post("/api/v1/refunds/", body, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert r.status_code == 201
    assert r.json()["amount_requested"] == "59.90"
    r = api.post("/api/v1/refunds/", body, format="json", HTTP_IDEMPOTENCY_KEY="k2")
    assert r.status_code == 400 and "lines" in r.json(), "nothing is left once the first request holds it all"


def test_bad_path_ids_are_404_not_500(api):
    assert api.get("/api/v1/refunds/99999999999999999999999/").status_code == 404
    assert api.post("/api/v1/refunds/99999999999999999999999/withdraw/", {}, format="json").status_code == 404


def test_unknown_paths_and_malformed_ids_answer_json_404(api):
    for path in ("/api/v1/nope/", "/api/v1/refunds/abc/", "/api/v1/refunds/null,null/withdraw/"):
        r = api.get(path) if "withdraw" not in path else api.post(path, {}, format="json")
        assert r.status_code == 404 and r["Content-Type"] == "application/json", path


REFUND_BODIES = [
    refund_body(),
    {k: v for k, v in refund_body().items() if k != "lines"},
    refund_body(refund_method="store_credit", customer_note="too small"),
    refund_body(lines=[{"sku": "SKU-1", "quantity": 2}, {"sku": "SKU-2", "quantity": 1}]),
    refund_body(lines=[{"sku": "SKU-1", "quantity": 0}]),
    refund_body(lines=[{"quantity": 1}, {"sku": "x" * 65, "quantity": "a"}]),
    refund_body(lines=[]),
    refund_body(lines=None),
    refund_body(lines="SKU-1"),
    refund_body(reason="bored", kind="swap", refund_method="cash"),
    refund_body(order_number="", customer_note="x" * 2001),
    refund_body(order_number={"a": 1}),
    refund_body(extra=True),
    {},
    "just a string",
    ["a", "list"],
    None,
]


def _by_new_serializer(body):
    serializer = RefundCreateSerializer(data=body)
    if serializer.is_valid():
        return "valid", serializer.validated_data
    return "invalid", serializer.errors


def _by_bound_validator(body):
    try:
        return "valid", CREATE_BODY.validate(body)
    except ValidationError as exc:
        return "invalid", exc.detail


@pytest.mark.parametrize("body", REFUND_BODIES)
def test_the_intakes_bound_validator_answers_as_a_new_serializer(body):
    """The POST validates with one serializer made at import (`BoundValidator`): it must
    accept, default and refuse exactly as a serializer made for the request would."""
    assert _by_bound_validator(body) == _by_new_serializer(body)


def test_one_bound_validator_serves_many_threads_at_once():
    """Validation keeps no state on the shared serializer: threads switching every
    microsecond each get the answer for their own body."""
    bodies = [
        refund_body(order_number=f"N-{i}", lines=[{"sku": f"S-{i}", "quantity": i % 7 + (i % 3 == 0) * -1}]) for i in range(300)
    ] + REFUND_BODIES
    expected = [_by_new_serializer(body) for body in bodies]
    assert {status for status, _ in expected} == {"valid", "invalid"}
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            got = list(pool.map(_by_bound_validator, bodies * 4))
    finally:
        sys.setswitchinterval(interval)
    assert got == expected * 4


# --- bodies nested too deeply ---------------------------------------------------------------


def nested(depth: int) -> str:
    """A JSON text `depth` arrays deep, innermost an object: `[[...[{}]...]]` has depth + 1 levels."""
    return "[" * depth + "{}" + "]" * depth


@pytest.fixture
def refund_id(api, order):
    r = api.post("/api/v1/refunds/", refund_body(), format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert r.status_code == 201
    return r.json()["id"]


@pytest.fixture
def post_raw(api, carrier, refund_id):
    """POST or PUT a raw JSON text to each endpoint that takes a body (the webhook unauthenticated)."""
    webhook = APIClient()

    def call(endpoint: str, text: str):
        raw = text.encode()
        if endpoint == "tracking-events":
            # Signed with the carrier's own secret: the body is refused for its shape, not its signature.
            return webhook.post(
                "/api/v1/tracking-events/", raw, content_type="application/json", **sign_meta(carrier.secret, raw)
            )
        path, method = {
            "orders": ("/api/v1/orders/MKT-1/", api.put),
            "order-messages": ("/api/v1/orders/MKT-1/messages/", api.post),
            "refunds": ("/api/v1/refunds/", api.post),
            "withdraw": (f"/api/v1/refunds/{refund_id}/withdraw/", api.post),
            "return-shipment": (f"/api/v1/refunds/{refund_id}/return-shipment/", api.post),
        }[endpoint]
        return method(path, raw, content_type="application/json", HTTP_IDEMPOTENCY_KEY="deep")

    return call


BODY_ENDPOINTS = ["orders", "order-messages", "refunds", "withdraw", "return-shipment", "tracking-events"]


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS)
@pytest.mark.parametrize("depth", [50_000, MAX_JSON_DEPTH])
def test_json_nested_too_deeply_answers_400_with_a_sentence_and_writes_nothing(post_raw, endpoint, depth):
    before = db_snapshot()
    r = post_raw(endpoint, nested(depth))  # depth + 1 levels: one more than the limit at the least
    assert r.status_code == 400, r.content
    assert r.json() == {"detail": f"JSON nested too deeply: at most {MAX_JSON_DEPTH} levels of arrays and objects."}
    assert db_snapshot() == before


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS)
def test_json_as_deep_as_the_limit_is_parsed_and_refused_for_its_fields(post_raw, endpoint):
    before = db_snapshot()
    r = post_raw(endpoint, nested(MAX_JSON_DEPTH - 1))
    assert r.status_code in (400, 401), r.content
    assert "nested too deeply" not in r.content.decode()
    assert db_snapshot() == before


def test_brackets_inside_strings_do_not_count_as_nesting(api, order):
    body = refund_body(customer_note="[{" * 500 + '\\"]' * 10)
    r = api.post("/api/v1/refunds/", json.dumps(body), content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")
    assert r.status_code == 201, r.content
    assert RefundRequest.objects.get().customer_note == body["customer_note"]


def test_past_the_stack_the_answer_is_the_same_400(post_raw, monkeypatch):
    """Were the limit set above what the stack allows, json's RecursionError is still a 400."""
    monkeypatch.setattr(parsers, "MAX_JSON_DEPTH", 10**6)
    before = db_snapshot()
    for endpoint in ("refunds", "tracking-events"):
        r = post_raw(endpoint, nested(50_000))
        assert r.status_code == 400, r.content
        assert "JSON nested too deeply" in r.json()["detail"]
    assert db_snapshot() == before


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("", 0),
        ('"[[["', 0),
        ("{}", 1),
        ('{"a": "]]]", "b": [[1], {"c": "\\"[["}]}', 3),
        ('[1, [2, [3, "\\\\"], 4], "[{"]', 3),
        ('"unterminated [[[[', 0),
        (nested(40), 41),
    ],
)
def test_nesting_depth_counts_only_brackets_outside_strings(text, depth):
    assert parsers.nesting_depth(text) == depth


# --- amounts past the money columns ---------------------------------------------------------


def line_errors(response, index: int) -> dict:
    """The errors of the order body's line `index` (DRF keys a list's errors by position)."""
    return response.json()["lines"][str(index)]


def test_money_columns_bound_is_read_from_the_model():
    assert LINE_TOTAL_MAX == Decimal("999999999999.99") == LINES_TOTAL_MAX


def test_a_line_total_past_its_column_answers_400_on_unit_price_and_writes_nothing(api, order):
    body = order_body()
    body["lines"].append({"sku": "SKU-2", "name": "Gold", "quantity": 1, "unit_price": "9999999999.99"})
    # 1e6 as the channel sent it: a JSON number in exponent form, which is a whole quantity.
    text = json.dumps(body).replace('"quantity": 1,', '"quantity": 1e6,')
    assert '"quantity": 1e6' in text
    before = db_snapshot()
    r = api.put("/api/v1/orders/MKT-1/", text, content_type="application/json")
    assert r.status_code == 400, r.content
    assert line_errors(r, 1) == {
        "unit_price": ["1000000 × 9999999999.99 comes to 9999999999990000.00, more than one line may (999999999999.99)."]
    }
    assert "0" not in r.json()["lines"]
    assert db_snapshot() == before
    assert list(OrderLine.objects.values_list("sku", "quantity", "line_total")) == [("SKU-1", 2, Decimal("59.90"))]


def test_a_line_total_one_cent_past_its_column_is_refused_and_at_it_is_taken(api):
    over = order_body(lines=[{"sku": "BIG", "quantity": 3, "unit_price": "333333333333.34"}], payment=None)
    before = db_snapshot()
    r = api.put("/api/v1/orders/MKT-9/", over, format="json")
    assert r.status_code == 400, r.content
    assert "unit_price" in line_errors(r, 0)
    assert db_snapshot() == before

    at = order_body(lines=[{"sku": "BIG", "quantity": 3, "unit_price": "333333333333.33"}], payment=None)
    r = api.put("/api/v1/orders/MKT-9/", at, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["lines"][0]["line_total"] == "999999999999.99"


def test_lines_that_together_pass_the_order_column_answer_400_on_lines(api, order):
    lines = [{"sku": f"SKU-{i}", "quantity": 1, "unit_price": "500000000000.00"} for i in (1, 2)]
    before = db_snapshot()
    r = api.put("/api/v1/orders/MKT-1/", order_body(lines=lines), format="json")
    assert r.status_code == 400, r.content
    assert r.json() == {"lines": ["The lines come to 1000000000000.00, more than one order's lines may (999999999999.99)."]}
    assert db_snapshot() == before
    assert OrderLine.objects.get().unit_price == Decimal("29.95")


def test_a_quantity_over_the_maximum_is_refused_on_quantity(api):
    body = order_body(lines=[{"sku": "SKU-1", "quantity": MAX_QUANTITY + 1, "unit_price": "0.01"}])
    before = db_snapshot()
    r = api.put("/api/v1/orders/MKT-1/", body, format="json")
    assert r.status_code == 400
    assert list(line_errors(r, 0)) == ["quantity"]
    assert db_snapshot() == before
