"""Fuzz the channel API from its own OpenAPI schema (schemathesis, in-process over WSGI):
no 5xx, and every answer matches the documented status codes, content type and body."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance

from tests.api.conftest import make_channel, order_body

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
