"""Finance in a real browser against a live server on PostgreSQL: select payouts, see the
running total, bulk-approve, export an XLSX and read it back.

Screenshots land in test-artifacts/screenshots/ (finance-*).
"""

from decimal import Decimal

import openpyxl
import pytest
from django.utils import timezone

from refunds.models import Payout, RefundEvent
from tests.admin.test_finance import payout_through_services
from tests.e2e.conftest import login, shot
from tests.factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_finance_selects_payouts_sees_the_total_bulk_approves_and_exports_an_xlsx(page, live_server, tmp_path):
    a = payout_through_services(price="12.34")
    b = payout_through_services(price="56.78")
    left = payout_through_services(price="0.10")
    user = UserFactory(username="fay-finance", role="finance")

    login(page, live_server, user)
    page.goto(f"{live_server.url}/admin/refunds/payout/")
    page.wait_for_selector("#result_list")
    shot(page, "finance-1-queue")
    assert page.inner_text("#selection-sum") == "0.00"

    page.check(f"input.action-select[value='{a.pk}']")
    page.check(f"input.action-select[value='{b.pk}']")
    # 12.34 + 56.78 in floats is 69.12000000000001; the page sums integer cents.
    # A locator's wait, not wait_for_function: the page's CSP forbids evaluating a string.
    page.wait_for_selector("#selection-count:text-is('2')")
    assert page.inner_text("#selection-sum") == "69.12 CNY"
    shot(page, "finance-2-selected-total")

    page.select_option("select[name=action]", "approve_selected")
    page.click("button[name=index]")
    # The confirmation page: what will be paid, per currency and method; nothing approved yet.
    page.wait_for_selector("#approve-confirmation")
    assert "69.12 CNY" in page.inner_text("#totals-approve tfoot")
    shot(page, "finance-3a-confirm")
    a.refresh_from_db()
    assert a.state == Payout.State.PENDING_APPROVAL
    page.click("#confirm-approval")
    page.wait_for_selector(".messagelist")
    shot(page, "finance-3-approved")
    assert "Approved 2 payouts" in page.inner_text(".messagelist")
    for p in (a, b):
        p.refresh_from_db()
        assert p.approved_by == user and p.state == Payout.State.SUCCEEDED  # paid by the batch task
        assert RefundEvent.objects.filter(payout=p, action="payout_approve").count() == 1
    left.refresh_from_db()
    assert left.state == Payout.State.PENDING_APPROVAL and left.approved_by is None

    page.goto(f"{live_server.url}/admin/refunds/payout/?state=succeeded")
    page.wait_for_selector("#result_list")
    shot(page, "finance-4-succeeded")
    with page.expect_download() as download:
        page.click("#export-filtered-xlsx")
    name = f"payouts-succeeded-{timezone.localdate()}.xlsx"
    assert download.value.suggested_filename == name
    path = tmp_path / name
    download.value.save_as(path)
    rows = list(openpyxl.load_workbook(path, read_only=True).active.iter_rows(values_only=True))
    assert rows[0][0] == "payout no." and rows[0][6] == "amount"
    assert sorted(r[0] for r in rows[1:]) == sorted([str(a), str(b)])
    assert sum(Decimal(str(r[6])) for r in rows[1:]) == Decimal("69.12")
    assert {r[8] for r in rows[1:]} == {"Succeeded"} and {r[14] for r in rows[1:]} == {"succeeded"}
    assert all(r[12] for r in rows[1:])

    page.goto(f"{live_server.url}/admin/refunds/payout/reconciliation/")
    page.wait_for_selector("#reconciliation")
    shot(page, "finance-5-reconciliation")
    assert "69.12" in page.inner_text("#reconciliation tfoot")


def test_finance_works_the_unknown_outcomes_and_a_difference_with_the_gateways_books(page, live_server):
    from config.actors import Actor
    from refunds import services
    from refunds.gateways.simulated import SimulatedGateway
    from refunds.models import ReconciliationDifference

    user = UserFactory(username="fay-finance", role="finance")
    paid_then_lost = payout_through_services(price="118.00")
    services.payout_approve(payout_id=paid_then_lost.pk, actor=Actor.for_user(user))  # runs inline: executes it
    SimulatedGateway.set_mode("timeout_after_success", calls=1)
    lost = payout_through_services(price="42.00")
    services.payout_approve(payout_id=lost.pk, actor=Actor.for_user(user))
    lost.refresh_from_db()
    assert lost.state == Payout.State.OUTCOME_UNKNOWN

    login(page, live_server, user)
    page.goto(f"{live_server.url}/admin/refunds/payout/?state=outcome_unknown")
    page.wait_for_selector("#result_list")
    shot(page, "finance-6-outcome-unknown-queue")
    row = page.locator("#result_list tbody tr").filter(has_text=str(lost))
    assert "timeout: gateway did not answer in time" in row.inner_text()
    assert row.locator("button", has_text="Approve").count() == 0 and row.locator("button", has_text="Retry").count() == 0

    page.click(f"#result_list a:text-is('{lost}')")
    page.wait_for_selector("#outcome-unknown")
    assert page.locator("#void-payout").count() == 0 and page.locator("#retry-payout").count() == 0
    shot(page, "finance-7-outcome-unknown-payout")
    page.click("#ask-gateway")
    page.wait_for_selector(".messagelist")
    lost.refresh_from_db()
    assert lost.state == Payout.State.SUCCEEDED  # the gateway, asked, said it had paid

    # The gateway's books hold a refund of the first order's payment that ours don't.
    SimulatedGateway.plant_refund(
        idempotency_key="5f0c1a52-0000-4000-8000-000000000115",
        payment_reference=f"PAY-{paid_then_lost.request.order.number}",
        amount=Decimal("118.00"),
    )
    page.goto(f"{live_server.url}/admin/refunds/payout/reconciliation/")
    page.wait_for_selector("#gateway-checks")
    page.locator("#gateway-checks tbody tr").first.locator("button").click()
    page.wait_for_selector(".messagelist")
    page.reload()
    page.wait_for_selector("#differences")
    shot(page, "finance-8-differences")
    text = page.inner_text("#differences")
    assert "Paid by the gateway, not in our books" in text and "118.00 CNY" in text
    assert "The gateway refunded one payment more than our books say" in text

    page.locator("#differences a", has_text="Look and resolve").first.click()
    page.fill("#resolve-note", "Asked the gateway to reverse its duplicate refund; case 7781.")
    page.click("#resolve-difference button")
    page.wait_for_selector("#difference-resolved")
    shot(page, "finance-9-difference-resolved")
    assert ReconciliationDifference.objects.filter(resolved_at__isnull=False, resolved_by=user).count() == 1
    assert ReconciliationDifference.objects.filter(resolved_at__isnull=True).count() == 1
