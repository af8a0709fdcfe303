"""The Content-Security-Policy in a real browser: every admin screen and Swagger UI work under
it with no violation in Chromium's console, and what the policy forbids really is refused.

The policy is the one `config/settings.py` sends (no inline script or style, no eval); pages
that still carried an inline <script>, a <style> block, a style="" or an on*="" attribute
would show here as a "Refused to ..." console error.
"""

import re

import pytest
from django.urls import reverse

from refunds import services
from tests.admin.conftest import awaiting_return_request
from tests.admin.test_finance import payout_through_services
from tests.e2e.conftest import login, shot
from tests.factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Collects the violations the page reports to itself, beside the console's own messages.
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


@pytest.fixture
def watched(page):
    problems = []

    def on_console(msg):
        if msg.type == "error" and ("Content Security Policy" in msg.text or "Refused to" in msg.text):
            problems.append(f"{page.url}: {msg.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(f"{page.url}: {exc}"))
    page.add_init_script(RECORD_VIOLATIONS)
    page.problems = problems
    return page


def visit(page, url: str) -> None:
    response = page.goto(url)
    assert response.status < 400, (url, response.status)
    page.wait_for_load_state("load")
    reported = page.evaluate("window.__csp || []")
    page.problems.extend(f"{url}: {v}" for v in reported)


def test_every_admin_screen_works_under_the_policy_with_no_violation(watched, live_server):
    page = watched
    payout = payout_through_services(price="12.34")
    received = awaiting_return_request()
    services.return_receive(code=received.return_parcel.return_code, actor=services_actor("warehouse"))
    admin = UserFactory(username="csp-admin", is_superuser=True)
    base = live_server.url

    visit(page, f"{base}/admin/login/")
    login(page, live_server, admin)
    assert "content-security-policy" in {k.lower() for k in page.goto(f"{base}/admin/").headers}

    # Every model the index links to: its list, and the page of its first row.
    index = page.eval_on_selector_all("#content-main a", "els => els.map(e => e.getAttribute('href'))")
    changelists = sorted({h for h in index if h and re.fullmatch(r"/admin/\w+/\w+/", h)})
    assert len(changelists) >= 15
    for href in changelists:
        visit(page, base + href)
        first = page.query_selector("#result_list tbody tr th a, #result_list tbody tr td a")
        if first is not None:
            visit(page, base + first.get_attribute("href"))

    # The pages of our own, and Django's widget-heavy ones (filter_horizontal, calendar).
    for url in [
        reverse("admin:index"),
        reverse("admin:refunds_refundrequest_change", args=[payout.request_id]),
        reverse("admin:refunds_refundrequest_evidence", args=[payout.request_id]),
        reverse("admin:refunds_refundrequest_create"),
        reverse("admin:refunds_payout_change", args=[payout.pk]),
        reverse("admin:refunds_payout_reconciliation"),
        reverse("admin:orders_order_import"),
        reverse("admin:refunds_refundrequest_export"),
        reverse("admin:refunds_payout_approve", args=[payout.pk]),
        reverse("accounts:two_factor"),
        reverse("accounts:sessions"),
        reverse("admin:refunds_returnparcel_scan"),
        reverse("admin:refunds_returnparcel_inspect", args=[received.pk]),
        reverse("admin:risk_report"),
        reverse("admin:auth_user_add"),
        reverse("admin:auth_group_add"),
        reverse("admin:auth_user_change", args=[admin.pk]),
    ]:
        visit(page, base + url)

    # The scripts moved to files still run: the payouts' running total and the language switch.
    visit(page, f"{base}/admin/refunds/payout/")
    page.check(f"input.action-select[value='{payout.pk}']")
    page.wait_for_selector("#selection-count:text-is('1')")  # a locator's wait: the CSP forbids evaluating a string
    assert page.inner_text("#selection-sum") == "12.34 CNY"
    with page.expect_navigation():
        page.select_option("#language-switch select", "zh-hans")
    assert page.evaluate("document.documentElement.lang") == "zh-hans"
    shot(page, "csp-admin-zh")

    assert page.problems == []


def test_swagger_ui_works_under_the_policy_with_no_violation(watched, live_server):
    page = watched
    visit(page, f"{live_server.url}/api/docs/")
    create = page.locator('.opblock-post .opblock-summary-path[data-path="/api/v1/refunds/"]')
    create.wait_for()
    create.click()
    page.locator(".opblock-post.is-open .try-out__btn").first.click()
    page.locator(".opblock-post.is-open .execute").first.wait_for()
    shot(page, "csp-api-docs")

    assert page.problems == []


def test_an_inline_script_is_refused_by_the_policy(watched, live_server):
    """The policy is not decoration: a script injected into a page does not run."""
    page = watched
    visit(page, f"{live_server.url}/admin/login/")

    page.evaluate(
        """() => { const s = document.createElement("script"); s.textContent = "window.__ran = true"; document.body.append(s); }"""
    )

    assert page.evaluate("window.__ran === true") is False
    assert any("script-src" in p for p in page.evaluate("window.__csp"))


def services_actor(role: str):
    from config.actors import Actor

    return Actor.for_user(UserFactory(username=f"csp-{role}", role=role))
