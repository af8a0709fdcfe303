"""Channel keys: two at once during a rotation, an expiry, the last use (written at most once
a minute per key), managed in the admin with only the hash stored."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from config.errors import NotAllowed
from orders import services
from orders.models import Channel, ChannelKey
from tests.api.conftest import db_snapshot, order_body


def get(key, path="/api/v1/refunds/"):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client.get(path)


def test_two_active_keys_both_work_during_a_rotation(settings, channel, key):
    settings.CHANNEL_KEY_ROTATION_DAYS = 7
    new, new_key = services.channel_key_issue(channel_id=channel.pk)
    assert (new.slot, new.key_hash, new.key_prefix) == (2, Channel.hash_key(new_key), new_key[:8])
    old = ChannelKey.objects.get(channel=channel, slot=1)
    # The old key now expires after the rotation period, the new one never (until rotated).
    assert timedelta(days=6, hours=23) < old.expires_at - timezone.now() <= timedelta(days=7)
    assert new.expires_at is None
    assert get(key).status_code == 200
    assert get(new_key).status_code == 200
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {new_key}")
    assert api.put("/api/v1/orders/MKT-1/", order_body(), format="json").status_code == 201
    assert get(key, "/api/v1/orders/MKT-1/").status_code == 200  # the same channel, whichever key


def test_an_expired_key_answers_401_and_changes_nothing(channel, key):
    ChannelKey.objects.filter(channel=channel).update(expires_at=timezone.now() - timedelta(seconds=1))
    before = db_snapshot()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    r = client.put("/api/v1/orders/MKT-1/", order_body(), format="json")
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    assert r["WWW-Authenticate"] == "Bearer"
    assert db_snapshot() == before
    assert ChannelKey.objects.get(channel=channel).last_used_at is None


def test_a_key_of_an_inactive_channel_answers_401(channel, key):
    Channel.objects.filter(pk=channel.pk).update(is_active=False)
    assert get(key).status_code == 401


def test_a_third_key_is_refused_while_two_are_in_use_and_an_expired_slot_is_reused(channel, key):
    services.channel_key_issue(channel_id=channel.pk)
    ChannelKey.objects.filter(channel=channel).update(expires_at=None)
    with pytest.raises(NotAllowed):
        services.channel_key_issue(channel_id=channel.pk)
    assert ChannelKey.objects.filter(channel=channel).count() == 2
    ChannelKey.objects.filter(channel=channel, slot=1).update(expires_at=timezone.now() - timedelta(minutes=1))
    third, third_key = services.channel_key_issue(channel_id=channel.pk)
    assert third.slot == 1 and ChannelKey.objects.filter(channel=channel).count() == 2
    assert get(key).status_code == 401  # the expired key it replaced is gone
    assert get(third_key).status_code == 200


def test_the_db_holds_at_most_two_keys_per_channel(channel, key):
    from django.db import IntegrityError, transaction

    ChannelKey.objects.create(channel=channel, slot=2, key_hash="b" * 64, key_prefix="x")
    for slot in (1, 2, 3):
        with pytest.raises(IntegrityError), transaction.atomic():
            ChannelKey.objects.create(channel=channel, slot=slot, key_hash=f"{slot}" * 64, key_prefix="y")


def _key_updates(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].startswith("UPDATE") and "orders_channelkey" in q["sql"]]


def test_last_used_is_written_once_a_minute_not_on_every_request(channel, key):
    stored = ChannelKey.objects.get(channel=channel)
    assert stored.last_used_at is None
    with CaptureQueriesContext(connection) as first:
        assert get(key).status_code == 200
    assert len(_key_updates(first.captured_queries)) == 1
    stored.refresh_from_db()
    used = stored.last_used_at
    assert used is not None and timezone.now() - used < timedelta(seconds=5)

    # Within the minute: twenty requests, no write of the key at all.
    with CaptureQueriesContext(connection) as more:
        for _ in range(20):
            assert get(key).status_code == 200
    assert _key_updates(more.captured_queries) == []
    stored.refresh_from_db()
    assert stored.last_used_at == used

    # Once the mark is a minute old, the next request moves it (one UPDATE again).
    ChannelKey.objects.filter(pk=stored.pk).update(last_used_at=used - timedelta(seconds=61))
    with CaptureQueriesContext(connection) as later:
        assert get(key).status_code == 200
    assert len(_key_updates(later.captured_queries)) == 1
    stored.refresh_from_db()
    assert stored.last_used_at > used - timedelta(seconds=1)


def test_a_worker_that_read_an_old_mark_does_not_write_it_again(channel, key):
    """Two workers read the same old mark: the conditional UPDATE lets only the first write."""
    ChannelKey.objects.filter(channel=channel).update(last_used_at=timezone.now() - timedelta(minutes=5))
    stale = ChannelKey.objects.get(channel=channel)
    assert services.channel_key_use(key=key).last_used_at > stale.last_used_at
    written = ChannelKey.objects.get(channel=channel).last_used_at
    # The second worker's UPDATE still carries the condition, and matches no row now.
    assert ChannelKey.objects.filter(pk=stale.pk, last_used_at__lte=timezone.now() - services.KEY_LAST_USED_EVERY).count() == 0
    assert ChannelKey.objects.get(channel=channel).last_used_at == written


def test_create_channel_rotate_gives_a_second_key_and_the_first_an_expiry(db, capsys):
    call_command("create_channel", "web", kind="web_store")
    first = capsys.readouterr().out.strip().splitlines()[-1]
    call_command("create_channel", "web", kind="web_store", rotate=True)
    second = capsys.readouterr().out.strip().splitlines()[-1]
    assert first != second
    assert get(first).status_code == 200 and get(second).status_code == 200
    keys = {k.key_hash: k for k in Channel.objects.get(name="web").keys.all()}
    assert keys[Channel.hash_key(first)].expires_at is not None
    assert keys[Channel.hash_key(second)].expires_at is None
