"""Real concurrency against PostgreSQL: threads posting to the live test server at once."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from orders.models import Order, OrderLine
from refunds.models import RefundLine, RefundRequest
from tests.api.conftest import order_body

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]


def _post_all(url, key, bodies_and_keys):
    barrier = threading.Barrier(len(bodies_and_keys))

    def post(item):
        body, idem = item
        with requests.Session() as s:
            s.headers["Authorization"] = f"Bearer {key}"
            # Open the keep-alive connection first: 50 connects at once overflow the test
            # server's listen backlog, and the race is about the POSTs, not the handshakes.
            for attempt in range(5):
                try:
                    s.get(url, params={"page_size": 1}, timeout=60)
                    break
                except requests.ConnectionError:
                    time.sleep(0.1 * (attempt + 1))
            barrier.wait()
            r = s.post(url, json=body, headers={"Idempotency-Key": idem}, timeout=60)
        return r.status_code, r.json()

    with ThreadPoolExecutor(max_workers=len(bodies_and_keys)) as pool:
        return list(pool.map(post, bodies_and_keys))


def test_50_concurrent_posts_with_one_key_create_one_request(live_server, key):
    requests.put(
        f"{live_server.url}/api/v1/orders/MKT-1/", json=order_body(), headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    body = {"order_number": "MKT-1", "kind": "refund_only", "reason": "size_fit", "lines": [{"sku": "SKU-1", "quantity": 1}]}
    answers = _post_all(f"{live_server.url}/api/v1/refunds/", key, [(body, "same-key")] * 50)
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] * 49 + [201], statuses
    assert len({got["id"] for _, got in answers}) == 1
    assert RefundRequest.objects.count() == 1 and RefundLine.objects.count() == 1
    line = OrderLine.objects.get()
    assert line.held_quantity + line.refunded_quantity == 1, "held once, not fifty times"


def test_two_requests_racing_for_the_last_unit_exactly_one_wins(live_server, key):
    body = order_body(lines=[{"sku": "SKU-1", "quantity": 1, "unit_price": "29.95"}])
    body["payment"]["amount"] = "29.95"
    requests.put(f"{live_server.url}/api/v1/orders/MKT-1/", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    ask = {"order_number": "MKT-1", "kind": "return_and_refund", "reason": "size_fit", "lines": [{"sku": "SKU-1", "quantity": 1}]}
    answers = _post_all(f"{live_server.url}/api/v1/refunds/", key, [(ask, "a"), (ask, "b")])
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201, 400], answers
    loser = next(got for status, got in answers if status == 400)
    assert "lines" in loser
    assert RefundRequest.objects.count() == 1
    order = Order.objects.get()
    assert order.held_total + order.refunded_total == order.paid_total
