"""Support and warehouse in a real browser against a live server on PostgreSQL.

Screenshots of every screen land in test-artifacts/screenshots/ (support-*, warehouse-*).
"""

import re

import pytest

from refunds.models import Inspection, RefundRequest
from tests.admin.conftest import awaiting_return_request, escalated_request
from tests.e2e.conftest import login, shot
from tests.factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

State = RefundRequest.State


def test_support_opens_a_request_reads_the_evidence_and_approves_it(page, live_server):
    refund = escalated_request(price="120.00")
    user = UserFactory(username="sam-support", role="support")

    login(page, live_server, user)
    shot(page, "support-1-home")
    page.click("#role-home a:has-text('Under review')")
    page.wait_for_selector("#result_list")
    shot(page, "support-2-queue")
    assert refund.escalation_reason[:30] in page.inner_text("#result_list")

    page.click(f"#result_list a:has-text('{refund.number}')")
    page.wait_for_selector("#event-log")
    shot(page, "support-3-request")
    phone = refund.customer.phone
    assert phone not in page.content() and f"{phone[-4:]}" in page.content()

    page.click("#evidence-link")
    page.wait_for_selector("#evidence-report")
    shot(page, "support-4-evidence")
    report = page.inner_text("#evidence-report")
    assert "Rule trace" in report and refund.order.number in report and "PAY-****" in report

    page.click("text=Back to the request")
    page.fill("#action-approve textarea", "photos match the description")
    page.click("#action-approve input[type=submit]")
    page.wait_for_selector(".messagelist")
    shot(page, "support-5-approved")
    assert "approval recorded" in page.inner_text(".messagelist")
    refund.refresh_from_db()
    assert refund.state == State.AWAITING_RETURN
    assert refund.approved_by == user


def test_warehouse_scans_a_return_code_and_records_the_inspection(page, live_server):
    refund = awaiting_return_request()
    code = refund.return_parcel.return_code
    user = UserFactory(username="wu-warehouse", role="warehouse")

    login(page, live_server, user)
    shot(page, "warehouse-1-home")
    page.click("#role-home a:has-text('Awaiting return')")
    page.wait_for_selector("#result_list")
    shot(page, "warehouse-2-queue")
    page.click("#scan-link")
    page.wait_for_selector("#id_code")
    assert page.evaluate("document.activeElement.id") == "id_code"
    shot(page, "warehouse-3-scan")

    # A keyboard-wedge scanner: the digits, then Enter.
    page.keyboard.type(code, delay=5)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/inspect/\d+/$"))
    shot(page, "warehouse-4-inspect")
    refund.refresh_from_db()
    assert refund.state == State.RECEIVED
    assert str(refund.amount_requested) not in page.content()

    page.check("input[name=grade][value=unopened]")
    page.check("input[name=disposition][value=restock]")
    page.fill("textarea[name=note]", "sealed")
    page.click("#inspect-form input[type=submit]")
    page.wait_for_selector("#id_code")
    shot(page, "warehouse-5-done")
    assert "ready for payout" in page.inner_text(".messagelist")
    refund.refresh_from_db()
    assert refund.state == State.READY_FOR_PAYOUT
    assert Inspection.objects.get(request=refund).inspected_by == user

    # The same code again: said plainly, nothing changes.
    page.keyboard.type(code, delay=5)
    page.keyboard.press("Enter")
    page.wait_for_selector(".messagelist .error")
    shot(page, "warehouse-6-already-received")
    assert "already received" in page.inner_text(".messagelist")
    refund.refresh_from_db()
    assert refund.state == State.READY_FOR_PAYOUT


def test_support_switches_the_admin_to_chinese(page, live_server):
    escalated_request()
    user = UserFactory(username="li-support", role="support")
    login(page, live_server, user)
    page.select_option("#language-switch select", "zh-hans")
    page.wait_for_selector("text=退款工作台")
    page.goto(f"{live_server.url}/admin/refunds/refundrequest/")
    page.wait_for_selector("#result_list")
    shot(page, "support-6-queue-zh")
    assert "客服队列（审核中、等待客户）" in page.content()
    assert "与描述不符" in page.inner_text("#result_list")
