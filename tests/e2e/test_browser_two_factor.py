"""Finance must use two-factor authentication: in a real browser against a live server, a new
finance user signs in, is sent to enrolment, reads the key off the page as an authenticator
app would, answers with the code computed here, keeps the recovery codes, signs out, and signs
in again with the next code. Then another browser of theirs is ended from the sessions page.

Screenshots land in test-artifacts/screenshots/ (two-factor-*).
"""

import base64

import pytest
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.e2e.conftest import PASSWORD, shot
from tests.factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _code_from_key(secret: str, ahead: int = 0) -> str:
    """What an authenticator app shows for the key typed in by hand (spaces and all)."""
    key = base64.b32decode(secret.replace(" ", ""))
    return f"{TOTP(key, drift=ahead).token():06d}"


def _password_step(page, live_server, username):
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")


def test_finance_enrols_and_signs_in_with_a_totp_code(page, browser, live_server):
    user = UserFactory(username="fei-finance", role="finance")

    _password_step(page, live_server, "fei-finance")
    page.wait_for_url("**/admin/account/two-factor/enrol/**")
    shot(page, "two-factor-1-enrol")
    assert page.locator("#totp-qr svg").count() == 1
    # Nothing in the admin works before enrolment.
    page.goto(f"{live_server.url}/admin/refunds/payout/")
    page.wait_for_url("**/admin/account/two-factor/enrol/**")

    secret = page.inner_text("#totp-secret")
    page.fill("#id_code", "000000")
    page.click("#enrol-form input[type=submit]")
    assert "That code is not right" in page.inner_text(".errorlist")
    page.wait_for_timeout(1100)  # django-otp makes a failed device wait a second
    page.fill("#id_code", _code_from_key(secret))
    page.click("#enrol-form input[type=submit]")
    page.wait_for_selector("#recovery-codes")
    codes = page.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == 10
    shot(page, "two-factor-2-recovery-codes")
    page.click("#recovery-continue")
    page.wait_for_url(f"{live_server.url}/admin/refunds/payout/")
    assert TOTPDevice.objects.get(user=user).confirmed

    page.click("#logout-form button")
    page.wait_for_url("**/admin/logout/**")

    _password_step(page, live_server, "fei-finance")
    page.wait_for_url("**/admin/account/two-factor/verify/**")
    shot(page, "two-factor-3-verify")
    # The code of the enrolment was used: the app's next one (django-otp allows one step of drift).
    page.fill("#id_code", _code_from_key(secret, ahead=1))
    page.click("#verify-form input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    page.goto(f"{live_server.url}/admin/refunds/payout/")
    page.wait_for_selector("#changelist")

    # A second browser of the same person, with a recovery code; ended from the first.
    other = browser.new_context(locale="zh-CN")
    other_page = other.new_page()
    _password_step(other_page, live_server, "fei-finance")
    other_page.wait_for_url("**/admin/account/two-factor/verify/**")
    shot(other_page, "two-factor-4-verify-zh")
    other_page.fill("#id_code", codes[0])
    other_page.click("#verify-form input[type=submit]")
    other_page.wait_for_url(f"{live_server.url}/admin/")

    page.goto(f"{live_server.url}/admin/account/sessions/")
    page.wait_for_selector("#session-list")
    assert page.locator("#session-list tbody tr").count() == 2
    shot(page, "two-factor-5-sessions")
    page.click("button[name=end_others]")
    page.wait_for_selector(".messagelist")

    other_page.goto(f"{live_server.url}/admin/refunds/payout/")
    other_page.wait_for_url("**/admin/login/**")
    other.close()
