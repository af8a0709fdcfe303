"""Submitting a request and reading one cost a fixed number of queries, whatever the order's
size (1 line or 50); so does the evaluation that runs after commit."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.api.conftest import order_body

pytestmark = pytest.mark.django_db

# Pinned: if one of these grows, something started querying per line or per row.
SUBMIT_QUERIES = 37
READ_QUERIES = 4
LIST_QUERIES = 4


def _order(api, number, n_lines):
    lines = [{"sku": f"SKU-{i}", "name": f"Item {i}", "quantity": 2, "unit_price": "1.50"} for i in range(n_lines)]
    body = order_body(lines=lines)
    body["payment"]["amount"] = f"{3 * n_lines:.2f}"
    body["shipments"] = [
        {
            "carrier": "sf",
            "tracking_number": f"SF-{number}",
            "shipped_at": "2026-11-20T10:00:00Z",
            "delivered_at": "2026-11-21T10:00:00Z",
        }
    ]
    assert api.put(f"/api/v1/orders/{number}/", body, format="json").status_code == 201


def _measure(api, django_capture_on_commit_callbacks, number):
    body = {"order_number": number, "kind": "refund_only", "reason": "size_fit", "refund_method": "store_credit"}
    with django_capture_on_commit_callbacks(execute=False) as callbacks, CaptureQueriesContext(connection) as submit:
        r = api.post("/api/v1/refunds/", body, format="json", HTTP_IDEMPOTENCY_KEY=f"k-{number}")
    assert r.status_code == 201, r.content
    with CaptureQueriesContext(connection) as after_commit:
        for cb in callbacks:
            cb()
    with CaptureQueriesContext(connection) as read:
        got = api.get(f"/api/v1/refunds/{r.json()['id']}/")
    assert got.json()["state"] == "ready_for_payout", "the evaluation ran after commit"
    with CaptureQueriesContext(connection) as listing:
        assert api.get("/api/v1/refunds/").status_code == 200
    return len(submit), len(read), len(listing), len(after_commit)


def test_submit_and_read_cost_the_same_for_1_and_50_lines(api, django_capture_on_commit_callbacks):
    _order(api, "SMALL", 1)
    _order(api, "BIG", 50)
    small = _measure(api, django_capture_on_commit_callbacks, "SMALL")
    big = _measure(api, django_capture_on_commit_callbacks, "BIG")
    assert small == big
    assert small[:3] == (SUBMIT_QUERIES, READ_QUERIES, LIST_QUERIES)
