"""Browser fixtures for end-to-end tests: Playwright (sync API) driving Debian's chromium.

Use with `live_server` on PostgreSQL (`@pytest.mark.postgres`, transactional). The live
server runs in this process, so django-q2 tasks still run inline (Conf.SYNC is patched).
Screenshots go to `test-artifacts/screenshots/` — look at them after a run.
"""

import os
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent.parent
SCREENSHOT_DIR = BASE_DIR / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "pass-Word-123"  # what tests.factories.UserFactory sets


@pytest.fixture(scope="session")
def _playwright():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread; Django refuses ORM
    # calls from a thread with a running loop unless told the code is really synchronous.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(_playwright):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM}")
    browser = _playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-US")
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def screenshot_dir():
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    return SCREENSHOT_DIR


def shot(page, name: str) -> Path:
    """Save a full-page screenshot as `test-artifacts/screenshots/<name>.png`."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def totp_code(device, *, ahead: int = 0) -> str:
    """What an authenticator app shows now for `device` (django-otp's own TOTP)."""
    from django_otp.oath import TOTP

    device.refresh_from_db()
    return f"{TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift + ahead).token():0{device.digits}d}"


def login(page, live_server, user, password: str = PASSWORD) -> None:
    """Log `user` into the admin through the real login form, and for a role that requires
    two-factor authentication through the verify page too, with an authenticator made here."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from refunds.roles import two_factor_required

    device = None
    if two_factor_required(user):
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
            user=user, name="e2e authenticator", confirmed=True
        )
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", user.get_username())
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    if device is not None:
        page.wait_for_url("**/admin/account/two-factor/verify/**")
        page.fill("#id_code", totp_code(device))
        page.click("#verify-form input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
