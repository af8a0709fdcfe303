"""Submitting a request and reading one cost a fixed number of queries, whatever the order's
size (1 line or 50); so does the evaluation that runs after commit."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from config import q2
from refunds.models import RefundRequest
from tests.api.conftest import iso, order_body

pytestmark = pytest.mark.django_db

# Pinned: if one of these grows, something started querying per line or per row.
# Submit, on every database: auth, the order and line lock, two holds, request, lines,
# event, and the savepoint pair the test's own transaction makes (the Idempotency-Key is
# looked up only for a refusal or a key already used).
SUBMIT_QUERIES = 9
# The one task queued after commit: evidence, risk score and receipt, then the evaluation
# (and, with sync q2, django-q2 saving its result).
INTAKE_TASK_QUERIES = 50
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
            "shipped_at": iso(5, 10),
            "delivered_at": iso(6, 10),
        }
    ]
    assert api.put(f"/api/v1/orders/{number}/", body, format="json").status_code == 201


def _measure(api, django_capture_on_commit_callbacks, monkeypatch, number):
    body = {"order_number": number, "kind": "refund_only", "reason": "size_fit", "refund_method": "store_credit"}
    with django_capture_on_commit_callbacks(execute=False) as callbacks, CaptureQueriesContext(connection) as submit:
        r = api.post("/api/v1/refunds/", body, format="json", HTTP_IDEMPOTENCY_KEY=f"k-{number}")
    assert r.status_code == 201, r.content
    # Counted now: a later request through the test client resets the connection's query log.
    n_submit = len(submit)
    refund_id = r.json()["id"]
    assert RefundRequest.objects.get(pk=refund_id).evidence == {}, "intake leaves the evidence to the task"
    # Answered from the objects in hand, the 201 is what reading the request back would say.
    assert r.json()["state"] == "submitted" and [e["action"] for e in r.json()["timeline"]] == ["submit"]
    assert r.json() == api.get(f"/api/v1/refunds/{refund_id}/").json()
    # One broker write per POST: the evaluation task, and nothing else.
    queued = []
    real_async_task = q2.async_task

    def recording(func, *args, **kwargs):
        queued.append((func, args))
        return real_async_task(func, *args, **kwargs)

    assert len(callbacks) == 1
    # The task runs inline (sync q2): its own after-commit work (risk recompute, sends) is
    # registered on the test's open transaction and not counted here.
    with monkeypatch.context() as patch, CaptureQueriesContext(connection) as after_commit:
        patch.setattr(q2, "async_task", recording)
        callbacks[0]()
    n_after_commit = len(after_commit)
    assert queued == [("refunds.tasks.refund_evaluate_task", (refund_id,))]
    refund = RefundRequest.objects.get(pk=refund_id)
    assert refund.evidence["captured_at"] and refund.risk_level, "the task captured the evidence and risk first"
    with CaptureQueriesContext(connection) as read:
        got = api.get(f"/api/v1/refunds/{refund_id}/")
    assert got.json()["state"] == "ready_for_payout", "the evaluation ran after commit"
    with CaptureQueriesContext(connection) as listing:
        assert api.get("/api/v1/refunds/").status_code == 200
    return n_submit, len(read), len(listing), n_after_commit


def test_submit_read_and_intake_task_cost_the_same_for_1_and_50_lines(api, django_capture_on_commit_callbacks, monkeypatch):
    _order(api, "SMALL", 1)
    _order(api, "BIG", 50)
    small = _measure(api, django_capture_on_commit_callbacks, monkeypatch, "SMALL")
    big = _measure(api, django_capture_on_commit_callbacks, monkeypatch, "BIG")
    assert small == big
    assert small == (SUBMIT_QUERIES, READ_QUERIES, LIST_QUERIES, INTAKE_TASK_QUERIES)
