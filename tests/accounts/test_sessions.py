"""Staff sessions: an idle timeout, a page to see and end one's sessions, and the schedule
that deletes expired ones (issue 18)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from accounts import tasks
from accounts.models import StaffSession
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
INDEX = reverse("admin:index")
SESSIONS = reverse("accounts:sessions")


@pytest.fixture
def clock(monkeypatch):
    """Move Django's clock (sessions, their expiry and "last seen" all read timezone.now)."""
    start = timezone.now()
    state = {"now": start}
    monkeypatch.setattr(timezone, "now", lambda: state["now"])

    def move(**delta):
        state["now"] = start + timedelta(**delta)

    return move


def test_a_session_unused_for_the_idle_timeout_is_signed_out_and_use_keeps_it_alive(client, clock, settings):
    assert settings.SESSION_COOKIE_AGE == 8 * 3600
    client.force_login(UserFactory(username="s", role="support"))
    clock(hours=7)
    assert client.get(INDEX).status_code == 200  # seen: the 8 hours start again
    clock(hours=14)
    assert client.get(INDEX).status_code == 200
    clock(hours=22, minutes=1)
    response = client.get(INDEX)
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))


def test_last_seen_costs_one_update_a_minute_and_nothing_in_between(client, clock):
    user = UserFactory(username="s", role="support")
    client.force_login(user)

    def session_writes():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(INDEX).status_code == 200
        return [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("UPDATE") and "staffsession" in q["sql"]]

    assert session_writes() == []
    clock(seconds=30)
    assert session_writes() == []
    clock(seconds=61)
    assert len(session_writes()) == 1
    row = StaffSession.objects.get(user=user)
    assert abs(row.last_seen_at - timezone.now()) < timedelta(seconds=1)
    assert row.ip_address == "127.0.0.1"


def test_the_api_and_health_check_never_touch_sessions(client):
    with CaptureQueriesContext(connection) as ctx:
        client.get("/health/")
    assert not [q for q in ctx.captured_queries if "staffsession" in q["sql"]]


def test_a_staff_member_sees_their_sessions_and_ending_one_signs_that_browser_out(client):
    user = UserFactory(username="s", role="support")
    laptop, phone = client, Client(HTTP_USER_AGENT="Phone Browser/1.0", REMOTE_ADDR="203.0.113.9")
    laptop.force_login(user)
    phone.force_login(user)
    someone_else = Client()
    someone_else.force_login(UserFactory(username="t", role="support"))

    page = laptop.get(SESSIONS)
    assert page.status_code == 200
    listed = page.context["sessions"]
    assert len(listed) == 2  # not the other user's
    phone_row = next(s for s in listed if s.session_key == phone.session.session_key)
    assert "this browser" in page.content.decode()

    # another user's handle ends nothing
    other_row = StaffSession.objects.get(user__username="t")
    laptop.post(SESSIONS, {"handle": other_row.handle})
    assert someone_else.get(INDEX).status_code == 200

    assert laptop.post(SESSIONS, {"handle": phone_row.handle}).status_code == 302
    assert phone.get(INDEX).status_code == 302  # signed out
    assert laptop.get(INDEX).status_code == 200
    assert StaffSession.objects.filter(user=user).count() == 1


def test_end_all_other_sessions_keeps_this_one(client):
    user = UserFactory(username="s", role="support")
    others = [Client() for _ in range(3)]
    for c in [client, *others]:
        c.force_login(user)
    client.post(SESSIONS, {"end_others": "1"})
    assert client.get(INDEX).status_code == 200
    assert all(c.get(INDEX).status_code == 302 for c in others)


def test_ending_this_browsers_session_signs_out(client):
    client.force_login(UserFactory(username="s", role="support"))
    handle = client.session["_staff_handle"]
    response = client.post(SESSIONS, {"handle": handle})
    assert response.status_code == 302 and response["Location"] == reverse("admin:login")
    assert client.get(INDEX).status_code == 302


def test_the_login_form_records_the_browser_and_address(client):
    UserFactory(username="s", role="support")
    client.post(
        "/admin/login/?next=/admin/",
        {"username": "s", "password": "pass-Word-123"},
        HTTP_USER_AGENT="Mozilla/5.0 TestBrowser",
        REMOTE_ADDR="203.0.113.20",
    )
    row = StaffSession.objects.get(user__username="s")
    assert row.user_agent == "Mozilla/5.0 TestBrowser" and row.ip_address == "203.0.113.20"
    assert row.signed_in_at is not None and row.handle


def test_the_schedule_deletes_expired_sessions_only(client):
    user = UserFactory(username="s", role="support")
    client.force_login(user)
    gone = Client()
    gone.force_login(user)
    StaffSession.objects.filter(session_key=gone.session.session_key).update(expire_date=timezone.now() - timedelta(seconds=1))
    assert Schedule.objects.filter(func="accounts.tasks.prune_sessions", schedule_type=Schedule.HOURLY).exists()

    tasks.prune_sessions()

    assert list(StaffSession.objects.values_list("session_key", flat=True)) == [client.session.session_key]


@pytest.mark.parametrize("role", ["support", "warehouse", "finance", "risk"])
def test_only_administrators_see_everyones_sessions(client, role, admin_user):
    client.force_login(UserFactory(username=f"{role}-x", role=role))
    assert client.get(reverse("admin:accounts_staffsession_changelist")).status_code == 403
    admin = Client()
    admin.force_login(admin_user)
    assert admin.get(reverse("admin:accounts_staffsession_changelist") + "?q=x").status_code == 200
    row = StaffSession.objects.exclude(user=admin_user).first()
    assert admin.get(reverse("admin:accounts_staffsession_change", args=[row.pk])).status_code == 200
