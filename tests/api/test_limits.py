"""The channel API's limits (settings.API_THROTTLE_RATES): per channel, and per IP on failed
authentication. Over a limit: 429, Retry-After, a sentence, and nothing done."""

import time
from unittest import mock

import pytest
import requests
from rest_framework.test import APIClient

from tests.api.conftest import db_snapshot, make_channel, order_body


def limits(settings, **rates):
    settings.API_THROTTLE_RATES = {"channel_burst": None, "channel_sustained": None, "failed_auth": None, **rates}


def client_for(key, ip="10.0.0.1"):
    client = APIClient(REMOTE_ADDR=ip)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.mark.e2e
def test_over_the_channel_limit_answers_429_with_retry_after_over_real_http(live_server, settings, key):
    limits(settings, channel_burst="5/min")
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    url = f"{live_server.url}/api/v1/orders/MKT-1/"
    assert session.put(url, json=order_body(), timeout=10).status_code == 201
    for _ in range(4):
        assert session.get(url, timeout=10).status_code == 200
    before = db_snapshot()
    r = session.put(url, json=order_body(shipping_fee="5.00"), timeout=10)
    assert r.status_code == 429, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert r.json()["detail"].startswith("Too many requests from this channel.")
    assert "seconds" in r.json()["detail"] or "second" in r.json()["detail"]
    assert db_snapshot() == before


def test_the_limit_is_per_channel_and_counts_all_its_keys(settings, channel, key):
    from orders import services

    limits(settings, channel_sustained="3/min")
    _, second_key = services.channel_key_issue(channel_id=channel.pk)
    _, other_key = make_channel("market")
    assert client_for(key).get("/api/v1/refunds/").status_code == 200
    assert client_for(second_key).get("/api/v1/refunds/").status_code == 200
    assert client_for(key, ip="10.0.0.2").get("/api/v1/refunds/").status_code == 200
    r = client_for(second_key).get("/api/v1/refunds/")
    assert r.status_code == 429 and int(r["Retry-After"]) >= 1
    # Another channel has its own count.
    assert client_for(other_key).get("/api/v1/refunds/").status_code == 200


def test_the_sentence_is_in_the_callers_language(settings, key):
    limits(settings, channel_burst="1/min")
    client = client_for(key)
    client.get("/api/v1/refunds/")
    r = client.get("/api/v1/refunds/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert r.status_code == 429 and r.json()["detail"]


@pytest.mark.e2e
def test_failed_authentication_is_limited_per_ip_over_real_http(live_server, settings, key):
    limits(settings, failed_auth="3/min")
    url = f"{live_server.url}/api/v1/refunds/"
    for n in range(3):
        r = requests.get(url, headers={"Authorization": f"Bearer guess-{n}"}, timeout=10)
        assert r.status_code == 401, r.text
    before = db_snapshot()
    r = requests.get(url, headers={"Authorization": "Bearer guess-4"}, timeout=10)
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
    assert r.json()["detail"].startswith("Too many failed attempts to authenticate from this address.")
    # Past the limit even the right key is refused from that address: a right guess after
    # many wrong ones is not let in, and nothing is written.
    r = requests.put(
        f"{live_server.url}/api/v1/orders/MKT-1/", json=order_body(), headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    assert r.status_code == 429
    assert db_snapshot() == before


def test_failed_authentication_counts_per_address_and_ignores_a_forged_forwarded_for(settings, key):
    limits(settings, failed_auth="2/min")
    for n in range(2):
        assert client_for(f"bad-{n}", ip="10.0.0.9").get("/api/v1/refunds/", HTTP_X_FORWARDED_FOR=f"1.2.3.{n}").status_code == 401
    # A new X-Forwarded-For does not make a new client: there is no proxy (API_NUM_PROXIES=0).
    assert client_for("bad-x", ip="10.0.0.9").get("/api/v1/refunds/", HTTP_X_FORWARDED_FOR="5.6.7.8").status_code == 429
    assert client_for(key, ip="10.0.0.9").get("/api/v1/refunds/").status_code == 429
    # Another address is not blocked; successful requests are not counted.
    for _ in range(5):
        assert client_for(key, ip="10.0.0.10").get("/api/v1/refunds/").status_code == 200


def test_behind_one_proxy_the_address_is_the_one_it_appends(settings, key):
    limits(settings, failed_auth="1/min")
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    from rest_framework.settings import api_settings

    api_settings.reload()
    try:
        proxy = "10.0.0.1"
        assert client_for("bad", ip=proxy).get("/api/v1/refunds/", HTTP_X_FORWARDED_FOR="203.0.113.5").status_code == 401
        assert client_for(key, ip=proxy).get("/api/v1/refunds/", HTTP_X_FORWARDED_FOR="203.0.113.5").status_code == 429
        assert client_for(key, ip=proxy).get("/api/v1/refunds/", HTTP_X_FORWARDED_FOR="203.0.113.6").status_code == 200
    finally:
        settings.REST_FRAMEWORK = {k: v for k, v in settings.REST_FRAMEWORK.items() if k != "NUM_PROXIES"}
        api_settings.reload()


def test_a_malformed_authorization_header_counts_and_never_500s(settings):
    limits(settings, failed_auth="3/min")
    client = APIClient(REMOTE_ADDR="10.0.0.3")
    for header in ("Bearer a b", "Bearer \xff", "Bearer "):
        r = client.get("/api/v1/refunds/", HTTP_AUTHORIZATION=header)
        assert r.status_code == 401, (header, r.content)
    assert client.get("/api/v1/refunds/", HTTP_AUTHORIZATION="Bearer x").status_code == 429


def test_a_failing_cache_lets_requests_through_rather_than_500(settings, key):
    limits(settings, channel_burst="1/min", failed_auth="1/min")
    # A Redis that refuses connections (nothing listens on port 1).
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}
    for _ in range(3):
        assert client_for(key).get("/api/v1/refunds/").status_code == 200
        assert client_for("bad").get("/api/v1/refunds/").status_code == 401
    # And one whose calls fail on the local-memory cache.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with (
        mock.patch("django.core.cache.backends.locmem.LocMemCache.incr", side_effect=ConnectionError("down")),
        mock.patch("django.core.cache.backends.locmem.LocMemCache.get", side_effect=ConnectionError("down")),
    ):
        for _ in range(3):
            assert client_for(key).get("/api/v1/refunds/").status_code == 200
            assert client_for("bad").get("/api/v1/refunds/").status_code == 401


def test_counters_live_in_the_configured_cache_and_expire(settings, channel, key):
    """One counter per channel and window, in Django's cache: with REDIS_URL a Redis key with
    a lifetime (shared by every worker), otherwise the process's local memory."""
    from django.core.cache import cache, caches
    from django.core.cache.backends.redis import RedisCache

    limits(settings, channel_burst="100/min")
    start = int(time.time() // 60)
    client_for(key).get("/api/v1/refunds/")
    client_for(key).get("/api/v1/refunds/")
    windows = {start, int(time.time() // 60)}
    names = [f"throttle:channel_burst:{channel.pk}:{w}" for w in sorted(windows)]
    assert sum(cache.get(name, 0) for name in names) == 2
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        redis = backend._cache.get_client()
        for name in names:
            if cache.get(name):
                assert 0 < redis.ttl(backend.make_key(name)) <= 61


def test_an_empty_rate_turns_the_limit_off(settings, key):
    limits(settings)
    for _ in range(30):
        assert client_for(key).get("/api/v1/refunds/").status_code == 200
