"""Two-factor authentication (django-otp): required for finance and administrators, optional
for the other roles, with one-time recovery codes (issue 18)."""

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services
from refunds import roles
from refunds.roles import two_factor_required, two_factor_required_expression
from tests.accounts.conftest import totp_code
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.real_two_factor]

ENROL = reverse("accounts:enrol")
VERIFY = reverse("accounts:verify")


def _enrol(client) -> tuple[TOTPDevice, list[str]]:
    assert client.get(ENROL).status_code == 200
    device = TOTPDevice.objects.get(user_id=client.session["_auth_user_id"], confirmed=False)
    response = client.post(ENROL, {"code": totp_code(device), "next": "/admin/"})
    assert response.status_code == 200, response.content.decode()[:2000]
    codes = re.findall(r"<li>([a-z2-7]{8})</li>", response.content.decode())
    return device, codes


@pytest.mark.parametrize("who", ["finance", "admin"])
def test_finance_and_administrators_are_sent_to_enrolment_before_any_admin_page(client, who):
    user = UserFactory(username="a", is_superuser=True) if who == "admin" else UserFactory(username="f", role="finance")
    client.force_login(user)
    for url in [reverse("admin:index"), reverse("admin:refunds_payout_changelist"), reverse("accounts:sessions")]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(ENROL + "?next=")
    # ... and a write too
    response = client.post(reverse("admin:refunds_payout_changelist"), {"action": "approve_selected"})
    assert response.status_code == 302 and response["Location"].startswith(ENROL)

    device, codes = _enrol(client)
    device.refresh_from_db()
    assert device.confirmed and len(codes) == services.RECOVERY_CODES
    assert client.get(reverse("admin:index")).status_code == 200
    assert client.get(reverse("admin:refunds_payout_changelist")).status_code == 200


def test_a_wrong_code_at_enrolment_is_refused_and_enrols_nothing(client):
    client.force_login(UserFactory(username="f", role="finance"))
    client.get(ENROL)
    response = client.post(ENROL, {"code": "000000"})
    assert response.status_code == 400
    assert "That code is not right" in response.content.decode()
    assert not TOTPDevice.objects.filter(confirmed=True).exists()
    assert not StaticToken.objects.exists()
    assert client.get(reverse("admin:index")).status_code == 302


@pytest.mark.parametrize("role", ["support", "warehouse", "risk"])
def test_the_other_roles_work_without_it(client, role):
    client.force_login(UserFactory(username="x", role=role))
    assert client.get(reverse("admin:index")).status_code == 200
    assert client.get(reverse("accounts:two_factor")).status_code == 200


def test_a_support_agent_who_enrolled_is_asked_for_a_code_at_the_next_sign_in(client):
    user = UserFactory(username="s", role="support")
    client.force_login(user)
    device, _ = _enrol(client)

    other = Client()
    other.force_login(user)
    response = other.get(reverse("admin:index"))
    assert response.status_code == 302 and response["Location"].startswith(VERIFY)
    assert other.post(VERIFY, {"code": "123456"}).status_code == 400
    device.refresh_from_db()
    device.throttle_reset()  # django-otp makes a device wait a second after a failure
    response = other.post(VERIFY, {"code": totp_code(device, ahead=1), "next": "/admin/"})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert other.get(reverse("admin:index")).status_code == 200


def test_a_recovery_code_works_once(client):
    user = UserFactory(username="f", role="finance")
    client.force_login(user)
    _, codes = _enrol(client)

    first = Client()
    first.force_login(user)
    response = first.post(VERIFY, {"code": codes[0].upper(), "next": "/admin/"})
    assert response.status_code == 302
    assert first.get(reverse("admin:index")).status_code == 200
    assert StaticToken.objects.filter(device__user=user).count() == services.RECOVERY_CODES - 1

    again = Client()
    again.force_login(user)
    assert again.post(VERIFY, {"code": codes[0]}).status_code == 400
    assert again.get(reverse("admin:index")).status_code == 302
    # a throttled device waits a second after a failure (django-otp's back-off)
    StaticToken.objects.filter(device__user=user).first().device.throttle_reset()
    assert again.post(VERIFY, {"code": codes[1]}).status_code == 302
    assert again.get(reverse("admin:index")).status_code == 200


def test_the_password_alone_cannot_replace_an_enrolled_authenticator(client):
    user = UserFactory(username="f", role="finance")
    client.force_login(user)
    device, _ = _enrol(client)

    thief = Client()
    thief.force_login(user)
    response = thief.get(ENROL)
    assert response.status_code == 302 and response["Location"].startswith(VERIFY)
    assert thief.post(ENROL, {"code": "123456"}).status_code == 302
    assert list(TOTPDevice.objects.filter(user=user).values_list("pk", "confirmed")) == [(device.pk, True)]


def test_finance_cannot_turn_it_off_and_support_can(client):
    finance = UserFactory(username="f", role="finance")
    client.force_login(finance)
    _enrol(client)
    assert client.post(reverse("accounts:disable")).status_code == 403
    assert TOTPDevice.objects.filter(user=finance, confirmed=True).exists()

    support = Client()
    support.force_login(UserFactory(username="s", role="support"))
    _enrol(support)
    assert support.post(reverse("accounts:disable")).status_code == 302
    assert not TOTPDevice.objects.filter(user__username="s").exists()
    assert StaticToken.objects.filter(device__user__username="s").count() == 0
    assert support.get(reverse("admin:index")).status_code == 200


def test_new_recovery_codes_replace_the_old_ones(client):
    user = UserFactory(username="f", role="finance")
    client.force_login(user)
    _, old = _enrol(client)
    response = client.post(reverse("accounts:recovery_codes"))
    new = re.findall(r"<li>([a-z2-7]{8})</li>", response.content.decode())
    assert len(new) == services.RECOVERY_CODES and not set(new) & set(old)
    assert set(StaticToken.objects.filter(device__user=user).values_list("token", flat=True)) == set(new)


def test_the_header_links_to_the_security_pages(client):
    client.force_login(UserFactory(username="s", role="support"))
    html = client.get(reverse("admin:index")).content.decode()
    assert reverse("accounts:two_factor") in html and reverse("accounts:sessions") in html


def test_the_enrolment_page_speaks_chinese(client):
    client.force_login(UserFactory(username="f", role="finance"))
    response = client.get(ENROL, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 200 and '<html lang="zh-hans"' in response.content.decode()
    assert "<svg" in response.content.decode()  # the QR code, inline


def test_the_rule_and_its_query_form_agree(db):
    users = [UserFactory(username=role, role=role) for role in roles.ROLES]
    users.append(UserFactory(username="root", is_superuser=True))
    users.append(UserFactory(username="nobody"))
    by_query = set(User.objects.filter(two_factor_required_expression()).values_list("username", flat=True))
    assert by_query == {u.username for u in users if two_factor_required(u)} == {"finance", "root"}


@pytest.mark.parametrize("who", ["support", "finance"])
def test_the_second_factor_costs_an_admin_request_one_query(client, who):
    """Unverified (support without 2FA): one EXISTS query. Verified (finance): django-otp's device lookup."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(UserFactory(username="u", role=who))
    if who == "finance":
        _enrol(client)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(reverse("admin:index")).status_code == 200
    otp = [q["sql"] for q in ctx.captured_queries if "otp_totp" in q["sql"] or "otp_static" in q["sql"]]
    assert len(otp) == 1, otp
