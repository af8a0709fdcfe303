"""Channel keys in the admin: issued once on a page of their own, only the hash stored; the
channel's page lists each key's prefix, state, expiry (editable) and last use; deleting one
revokes it; only the admin role reaches any of it."""

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from orders import services
from orders.models import Channel, ChannelKey
from tests.api.conftest import make_channel


@pytest.fixture
def channel_and_key(db):
    return make_channel("shop")


@pytest.fixture
def channel(channel_and_key):
    return channel_and_key[0]


@pytest.fixture
def key(channel_and_key):
    return channel_and_key[1]


def get(key, path="/api/v1/refunds/"):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client.get(path)


def test_admin_issues_a_key_shown_once_and_stores_only_its_hash(client, role_user, channel, key):
    client.force_login(role_user("admin"))
    changelist = reverse("admin:orders_channel_changelist")
    r = client.post(changelist, {"action": "issue_key", "_selected_action": [channel.pk]})
    assert r.status_code == 200
    page = r.content.decode()
    new_key = page.split('<code class="new-key">')[1].split("</code>")[0]
    assert new_key.startswith("rd_") and len(new_key) > 30
    stored = ChannelKey.objects.get(channel=channel, slot=2)
    assert stored.key_hash == Channel.hash_key(new_key)
    assert new_key not in (stored.key_hash, stored.key_prefix)
    assert get(new_key).status_code == 200
    # Never again: neither the list nor the channel's page shows it.
    for url in (changelist, reverse("admin:orders_channel_change", args=[channel.pk])):
        body = client.get(url).content.decode()
        assert new_key not in body and stored.key_hash not in body
        assert stored.key_prefix in body


def test_admin_refuses_a_third_key_with_a_message(client, role_user, channel, key):
    services.channel_key_issue(channel_id=channel.pk)
    ChannelKey.objects.filter(channel=channel).update(expires_at=None)
    client.force_login(role_user("admin"))
    changelist = reverse("admin:orders_channel_changelist")
    r = client.post(changelist, {"action": "issue_key", "_selected_action": [channel.pk]}, follow=True)
    assert "already has two keys in use" in r.content.decode()
    assert ChannelKey.objects.filter(channel=channel).count() == 2


def test_admin_shows_expiry_and_last_use_sets_an_expiry_and_revokes(client, role_user, channel, key):
    get(key)
    stored = ChannelKey.objects.get(channel=channel)
    client.force_login(role_user("admin"))
    url = reverse("admin:orders_channel_change", args=[channel.pk])
    page = client.get(url).content.decode()
    assert stored.key_prefix in page and "last used at" in page.lower()
    form = {
        "name": channel.name,
        "kind": channel.kind,
        "is_active": "on",
        "keys-TOTAL_FORMS": "1",
        "keys-INITIAL_FORMS": "1",
        "keys-MIN_NUM_FORMS": "0",
        "keys-MAX_NUM_FORMS": "2",
        "keys-0-id": stored.pk,
        "keys-0-channel": channel.pk,
        "keys-0-expires_at_0": "2030-01-01",
        "keys-0-expires_at_1": "00:00:00",
    }
    r = client.post(url, form)
    assert r.status_code == 302, r.content.decode()[:2000]
    stored.refresh_from_db()
    assert timezone.localtime(stored.expires_at).date().isoformat() == "2030-01-01"
    assert get(key).status_code == 200
    r = client.post(url, {**form, "keys-0-DELETE": "on"})
    assert r.status_code == 302
    assert not ChannelKey.objects.filter(pk=stored.pk).exists()
    assert get(key).status_code == 401


@pytest.mark.parametrize("role", ["support", "finance", "risk", "warehouse"])
def test_other_roles_cannot_issue_keys(client, role_user, channel, key, role):
    client.force_login(role_user(role))
    r = client.post(reverse("admin:orders_channel_changelist"), {"action": "issue_key", "_selected_action": [channel.pk]})
    assert r.status_code in (302, 403)
    assert ChannelKey.objects.filter(channel=channel).count() == 1
