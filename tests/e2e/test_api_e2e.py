"""End to end: a channel talks HTTP to the live test server; a real `qcluster` process
evaluates the requests (nothing runs inline in the test process)."""

import time
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from refunds.models import RefundRequest
from tests.api.conftest import make_channel, order_body
from tests.conftest import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]


@pytest.fixture
def channel_api(live_server, qcluster):
    _, key = make_channel("e2e-shop")
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    base = f"{live_server.url}/api/v1"

    def put_order(number, *, days_ago=5, delivered=True, lines=None, amount="15.00"):
        placed = timezone.now() - timedelta(days=days_ago + 3)
        body = order_body(
            placed_at=placed.isoformat(),
            lines=lines or [{"sku": "SKU-1", "name": "Socks", "quantity": 1, "unit_price": amount}],
            shipments=[
                {
                    "carrier": "sf",
                    "tracking_number": f"SF-{number}",
                    "shipped_at": (placed + timedelta(days=1)).isoformat(),
                    "delivered_at": (timezone.now() - timedelta(days=days_ago)).isoformat() if delivered else None,
                }
            ],
        )
        body["payment"]["amount"] = amount
        r = session.put(f"{base}/orders/{number}/", json=body, timeout=10)
        assert r.status_code == 201, r.text

    def submit(number, reason, kind="refund_only"):
        r = session.post(
            f"{base}/refunds/",
            json={"order_number": number, "kind": kind, "reason": reason},
            headers={"Idempotency-Key": f"e2e-{number}"},
            timeout=10,
        )
        assert r.status_code == 201, r.text
        assert r.json()["state"] == "submitted", "the test process must not evaluate inline"
        return r.json()["id"]

    def settled(refund_id, timeout):
        wait_for(lambda: RefundRequest.objects.filter(pk=refund_id).exclude(state="submitted").exists(), timeout=timeout)
        return session.get(f"{base}/refunds/{refund_id}/", timeout=10).json()

    def post(path):
        return session.post(f"{base}{path}", json={}, timeout=10)

    return put_order, submit, settled, post


def test_the_cluster_decides_the_easy_ones_and_escalates_or_rejects_the_rest(channel_api, qcluster):
    put_order, submit, settled, _ = channel_api
    put_order("E2E-OK")
    put_order("E2E-DISPUTE")
    put_order("E2E-LATE", days_ago=41)

    started = time.monotonic()
    ok = submit("E2E-OK", "size_fit")
    got = settled(ok, timeout=2)
    assert got["state"] == "ready_for_payout", qcluster.log_path.read_text()
    assert time.monotonic() - started < 2.5
    assert got["decision"]["decided_by"] == "system"

    got = settled(submit("E2E-DISPUTE", "not_as_described"), timeout=5)
    assert got["state"] == "under_review"
    assert "'Not as described' is a dispute reason" in got["decision"]["reason"]

    got = settled(submit("E2E-LATE", "size_fit"), timeout=5)
    assert got["state"] == "rejected"
    assert got["decision"]["reason"] == "delivered 41 days ago; window is 30"


def test_a_late_parcel_gets_the_expedite_offer_and_accepting_it_resolves(channel_api, qcluster):
    put_order, submit, settled, post = channel_api
    put_order("E2E-DELAY", delivered=False)
    refund_id = submit("E2E-DELAY", "shipping_delay")
    got = settled(refund_id, timeout=5)
    assert got["state"] == "awaiting_customer", qcluster.log_path.read_text()
    assert got["decision"]["alternative"]["kind"] == "expedite"

    r = post(f"/refunds/{refund_id}/alternative/accept/")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "resolved"
    assert post(f"/refunds/{refund_id}/alternative/accept/").status_code == 409
    assert RefundRequest.objects.get(pk=refund_id).holds_released_at is not None
