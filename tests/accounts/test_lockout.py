"""Repeated failed sign-ins lock sign-in per user name and per address (django-axes); an
administrator unlocks (issue 18)."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import SESSION_KEY
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "pass-Word-123"


def _signed_in(response) -> bool:
    return SESSION_KEY in response.wsgi_request.session


def test_after_the_limit_the_right_password_fails_too_until_an_administrator_unlocks(client, sign_in, settings, admin_user):
    user = UserFactory(username="fin", role="finance")
    for i in range(1, settings.AXES_FAILURE_LIMIT + 1):
        response = sign_in("fin", "wrong")
        # the failure that reaches the limit already answers with the locked-out page
        assert response.status_code == (429 if i == settings.AXES_FAILURE_LIMIT else 200)
        assert not _signed_in(response)

    locked = sign_in("fin", PASSWORD)
    assert locked.status_code == 429
    assert not _signed_in(locked)
    assert "Sign-in locked" in locked.content.decode()
    assert "30 minutes" in locked.content.decode()
    # ... from another address too: the user name is locked
    assert sign_in("fin", PASSWORD, ip="198.51.100.7").status_code == 429
    assert client.get(reverse("admin:index")).status_code == 302  # to the login page

    admin = client.__class__()
    admin.force_login(admin_user)
    attempts = AccessAttempt.objects.filter(username="fin")
    response = admin.post(
        reverse("admin:axes_accessattempt_changelist"),
        {"action": "unlock", "_selected_action": [a.pk for a in attempts]},
    )
    assert response.status_code == 302
    assert not AccessAttempt.objects.filter(username="fin").exists()

    response = sign_in("fin", PASSWORD)
    assert response.status_code == 302 and _signed_in(response)
    assert int(response.wsgi_request.session[SESSION_KEY]) == user.pk


def test_the_address_is_locked_whatever_user_name_it_tries(client, sign_in, settings):
    UserFactory(username="sam", role="support")
    for i in range(settings.AXES_FAILURE_LIMIT):
        sign_in(f"guess-{i}", "wrong", ip="203.0.113.66")

    assert sign_in("sam", PASSWORD, ip="203.0.113.66").status_code == 429
    response = sign_in("sam", PASSWORD, ip="203.0.113.67")
    assert response.status_code == 302 and _signed_in(response)


def test_fewer_failures_than_the_limit_lock_nothing_and_a_success_clears_them(sign_in, settings):
    UserFactory(username="sam", role="support")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        sign_in("sam", "wrong")
    assert sign_in("sam", PASSWORD).status_code == 302
    assert not AccessAttempt.objects.filter(username="sam").exists()  # AXES_RESET_ON_SUCCESS


def test_the_lock_ends_after_the_cool_off(sign_in, settings):
    UserFactory(username="sam", role="support")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in("sam", "wrong")
    assert sign_in("sam", PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=31))
    assert sign_in("sam", PASSWORD).status_code == 302


def test_the_locked_out_page_speaks_the_readers_language(sign_in, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in("nobody", "wrong")
    response = sign_in("nobody", "wrong", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 429
    assert '<html lang="zh-hans"' in response.content.decode()


@pytest.mark.parametrize("role", ["support", "warehouse", "finance", "risk"])
def test_only_administrators_see_the_lockouts_and_unlock(client, sign_in, settings, role):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in("victim", "wrong")
    client.force_login(UserFactory(username=f"{role}-x", role=role))
    changelist = reverse("admin:axes_accessattempt_changelist")
    assert client.get(changelist).status_code == 403
    response = client.post(
        changelist, {"action": "unlock", "_selected_action": list(AccessAttempt.objects.values_list("pk", flat=True))}
    )
    assert response.status_code == 403
    assert AccessAttempt.objects.filter(username="victim").exists()


def test_the_administrators_lockout_screen_lists_searches_and_shows_a_row(client, sign_in, settings, admin_user):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in("victim", "wrong")
    client.force_login(admin_user)
    changelist = reverse("admin:axes_accessattempt_changelist")
    assert "victim" in client.get(changelist + "?locked=yes").content.decode()
    assert client.get(changelist + "?q=victim").status_code == 200
    attempt = AccessAttempt.objects.get()
    assert client.get(reverse("admin:axes_accessattempt_change", args=[attempt.pk])).status_code == 200
