"""Fuzz the channel API from its own OpenAPI schema (schemathesis, in-process over WSGI):
no 5xx, and every answer matches the documented status codes, content type and body. Then
the inputs a schema doesn't describe: amounts at the edge of the money columns and JSON
nested to any depth."""

import json
from decimal import Decimal

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance

from orders.api.fields import MAX_QUANTITY
from orders.api.parsers import MAX_JSON_DEPTH
from orders.api.serializers import LINE_TOTAL_MAX
from orders.models import OrderLine
from tests.api.conftest import db_snapshot, make_channel, order_body

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def channel_key(db):
    channel, key = make_channel("fuzz")
    # Something to find: a real order, so some generated requests get past the 404s.
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.put("/api/v1/orders/MKT-1/", order_body(), format="json").status_code == 201
    return key


# Loaded from the app itself (the schema view touches no database), once, at collection.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


@pytest.fixture
def keep_test_connection():
    """The WSGI handler closes the database connection after each request; in a test that
    is the test's own transaction, so (like Django's test client) keep it open."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_answers_as_its_schema_says(case, channel_key, keep_test_connection):
    case.call_and_validate(headers={"Authorization": f"Bearer {channel_key}"}, checks=CHECKS)


PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@given(
    quantity=st.one_of(st.integers(1, MAX_QUANTITY), st.sampled_from([1, 3, 999_999, MAX_QUANTITY])),
    unit_price=st.one_of(
        st.decimals(min_value=0, max_value=LINE_TOTAL_MAX, places=2),
        st.sampled_from(["333333333333.33", "333333333333.34", "999999.99", "1000000.00", "9999999999.99"]),
    ),
)
@PROPERTY
def test_a_line_is_taken_exactly_when_its_total_fits_the_column(api, quantity, unit_price):
    price = f"{unit_price:.2f}" if not isinstance(unit_price, str) else unit_price
    body = order_body(lines=[{"sku": "SKU-1", "quantity": quantity, "unit_price": price}], payment=None)
    total = OrderLine.total_of(unit_price=Decimal(price), quantity=quantity)
    before = db_snapshot()
    r = api.put("/api/v1/orders/MKT-1/", body, format="json")
    if total <= LINE_TOTAL_MAX:
        assert r.status_code in (200, 201), r.content
        assert r.json()["lines"][0]["line_total"] == f"{total:.2f}"
    else:
        assert r.status_code == 400, r.content
        assert list(r.json()["lines"]["0"]) == ["unit_price"]
        assert db_snapshot() == before


@given(openers=st.lists(st.sampled_from(["[", '{"k": ', '[1, "]]", ', '{"[": ']), min_size=1, max_size=2 * MAX_JSON_DEPTH))
@PROPERTY
def test_json_is_refused_as_too_deep_exactly_past_the_limit(api, openers):
    closers = ["]" if opener.startswith("[") else "}" for opener in reversed(openers)]
    text = "".join(openers) + "0" + "".join(closers)
    assert json.loads(text) is not None  # well-formed, only deep
    before = db_snapshot()
    r = api.post("/api/v1/refunds/", text, content_type="application/json", HTTP_IDEMPOTENCY_KEY="deep")
    assert r.status_code == 400, r.content
    too_deep = r.json() == {"detail": f"JSON nested too deeply: at most {MAX_JSON_DEPTH} levels of arrays and objects."}
    assert too_deep == (len(openers) > MAX_JSON_DEPTH)
    assert db_snapshot() == before
