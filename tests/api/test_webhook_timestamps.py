"""The carrier webhook signs its X-Timestamp: one further than the tolerance from our clock,
older or newer, is refused with a sentence and changes nothing, so an old signed request
can't be replayed."""

import time

import pytest
import requests
from rest_framework.test import APIClient

from orders.models import TrackingEvent
from tests.api.conftest import db_snapshot, iso, sign, sign_meta, tracking_body

URL = "/api/v1/tracking-events/"


def post(body, headers):
    return APIClient(REMOTE_ADDR="10.1.0.1").post(URL, body, content_type="application/json", **headers)


@pytest.mark.e2e
def test_an_old_signed_event_is_refused_over_real_http_and_its_replay_fails(live_server, settings, carrier):
    settings.CARRIER_SIGNATURE_TOLERANCE_SECONDS = 300
    body = tracking_body(tracking_number="SF7", occurred_at=iso(3, 8))
    captured = sign(carrier.secret, body, timestamp=int(time.time()) - 301)  # a request seen 5 min ago
    before = db_snapshot()
    r = requests.post(f"{live_server.url}{URL}", data=body, headers={"Content-Type": "application/json", **captured}, timeout=10)
    assert r.status_code == 401, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    detail = r.json()["detail"]
    assert "X-Timestamp is 30" in detail and "at most 300" in detail, detail
    assert db_snapshot() == before
    # The same body signed now goes through once; its replay within the tolerance is harmless.
    fresh = {"Content-Type": "application/json", **sign(carrier.secret, body)}
    assert requests.post(f"{live_server.url}{URL}", data=body, headers=fresh, timeout=10).status_code == 201
    after = db_snapshot()
    assert requests.post(f"{live_server.url}{URL}", data=body, headers=fresh, timeout=10).status_code == 200
    assert db_snapshot() == after and TrackingEvent.objects.count() == 1


@pytest.mark.parametrize("offset", [-3600, -305, 305, 86400 * 365])
def test_timestamps_out_of_tolerance_either_way_are_refused(db, settings, carrier, offset):
    settings.CARRIER_SIGNATURE_TOLERANCE_SECONDS = 300
    body = tracking_body()
    before = db_snapshot()
    r = post(body, sign_meta(carrier.secret, body, timestamp=int(time.time()) + offset))
    assert r.status_code == 401 and "X-Timestamp" in r.json()["detail"]
    assert db_snapshot() == before


@pytest.mark.parametrize("offset", [-290, 0, 290])
def test_timestamps_within_tolerance_are_accepted(db, settings, carrier, offset):
    settings.CARRIER_SIGNATURE_TOLERANCE_SECONDS = 300
    body = tracking_body()
    assert post(body, sign_meta(carrier.secret, body, timestamp=int(time.time()) + offset)).status_code == 201


def test_the_tolerance_is_a_setting(db, settings, carrier):
    settings.CARRIER_SIGNATURE_TOLERANCE_SECONDS = 10
    body = tracking_body()
    assert post(body, sign_meta(carrier.secret, body, timestamp=int(time.time()) - 60)).status_code == 401
    settings.CARRIER_SIGNATURE_TOLERANCE_SECONDS = 120
    assert post(body, sign_meta(carrier.secret, body, timestamp=int(time.time()) - 60)).status_code == 201


@pytest.mark.parametrize("timestamp", ["", "abc", "1e9", "1.5", "-1", " 1", "9" * 13, "１２３", "0x10"])
def test_a_malformed_timestamp_is_a_401_never_a_500(db, carrier, timestamp):
    body = tracking_body()
    headers = sign_meta(carrier.secret, body)
    headers["HTTP_X_TIMESTAMP"] = timestamp
    before = db_snapshot()
    r = post(body, headers)
    assert r.status_code == 401, r.content
    assert db_snapshot() == before


def test_bad_signatures_count_towards_the_ip_limit_and_stale_timestamps_do_not(db, settings, carrier):
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "failed_auth": "2/min"}
    body = tracking_body()
    stale = sign_meta(carrier.secret, body, timestamp=int(time.time()) - 3600)
    for _ in range(5):  # a carrier's backlog of old events does not lock out its address
        assert post(body, stale).status_code == 401
    forged = {**sign_meta("not-the-secret", body)}
    assert post(body, forged).status_code == 401
    assert post(body, forged).status_code == 401
    r = post(body, forged)
    assert r.status_code == 429 and int(r["Retry-After"]) >= 1
    # Past the limit the address is refused even with a good signature; another address is not.
    assert post(body, sign_meta(carrier.secret, body)).status_code == 429
    other = APIClient(REMOTE_ADDR="10.1.0.2").post(URL, body, content_type="application/json", **sign_meta(carrier.secret, body))
    assert other.status_code == 201
