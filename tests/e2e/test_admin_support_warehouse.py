"""Support and warehouse in a real browser against a live server on PostgreSQL.

Screenshots of every screen land in test-artifacts/screenshots/ (support-*, warehouse-*).
"""

import re

import pytest

from refunds.models import Inspection, RefundRequest
from tests.admin.conftest import awaiting_return_request, escalated_request
from tests.e2e.conftest import login, shot
from tests.factories import OrderFactory, UserFactory

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


def test_support_files_a_request_for_a_customer_by_order_number(page, live_server):
    order = OrderFactory(lines=[("SKU-1", 2, "30.00"), ("SKU-2", 1, "12.50")])
    user = UserFactory(username="sue-support", role="support")

    login(page, live_server, user)
    page.goto(f"{live_server.url}/admin/refunds/refundrequest/")
    page.click("text=Create a request for a customer")
    page.fill("#order-number", order.number)
    page.click("#find-order input[type=submit]")
    page.wait_for_selector("#create-request")
    # Nothing about the order is typed: its lines are on the page to tick.
    assert "SKU-1" in page.inner_text("#create-request") and "SKU-2" in page.inner_text("#create-request")
    page.check("#create-request input[name=sku][value=SKU-1]")
    page.fill("#create-request input[name=qty-SKU-1]", "1")
    page.select_option("#create-request select[name=reason]", "size_fit")
    page.select_option("#create-request select[name=kind]", "refund_only")
    page.fill("#create-request textarea[name=customer_note]", "Too small, asked in the chat")
    shot(page, "support-7-create-for-customer")
    page.click("#create-request input[type=submit]")
    page.wait_for_selector(".messagelist")
    shot(page, "support-8-created")

    refund = RefundRequest.objects.get(order=order)
    assert f"{refund.number} was created for the customer." in page.inner_text(".messagelist")
    assert refund.channel.kind == "support_chat" and refund.customer_note == "Too small, asked in the chat"
    assert [(rl.order_line.sku, rl.quantity) for rl in refund.lines.all()] == [("SKU-1", 1)]
    assert refund.state == State.READY_FOR_PAYOUT  # evaluated at once: small, refund only, in the window
    assert "asked through" in page.inner_text(".rd-panel")
