"""Money moves only from the confirmation page: the list's action and the row's button show
what approving would do (count, totals per currency and method, the four-eyes outcomes), and
only that page's own POST approves."""

from decimal import Decimal

import pytest
from django.urls import reverse

from config.actors import Actor
from refunds import services
from refunds.models import Payout, PayoutBatch, RefundEvent
from tests.admin.conftest import confirm_approval as confirm
from tests.admin.test_finance import CHANGELIST, bulk_payouts, payout_through_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def fin(client, finance_user):
    client.force_login(finance_user)
    return client


def _action(client, ids, *, query="", select_across=False):
    return client.post(
        CHANGELIST + query,
        {"action": "approve_selected", "_selected_action": ids, "index": 0, "select_across": int(select_across)},
    )


def _untouched(*payouts):
    for p in payouts:
        p.refresh_from_db()
        assert p.state == Payout.State.PENDING_APPROVAL and p.approved_by is None and p.first_approved_by is None
    assert not RefundEvent.objects.filter(payout__in=payouts).exists()
    assert not PayoutBatch.objects.exists()


def test_the_action_shows_a_confirmation_with_totals_per_currency_and_method_and_approves_nothing(
    fin, settings, django_capture_on_commit_callbacks
):
    settings.REFUND_DESK = {**settings.REFUND_DESK, "PAYOUT_FOUR_EYES_ABOVE": "5000.00"}
    a, b = bulk_payouts(2, amount="1234.50")
    (c,) = bulk_payouts(1, amount="0.75")
    Payout.objects.filter(pk=c.pk).update(method="store_credit")
    (d,) = bulk_payouts(1, amount="20.00")
    Payout.objects.filter(pk=d.pk).update(currency="USD")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        page = _action(fin, [a.pk, b.pk, c.pk, d.pk])

    assert page.status_code == 200 and callbacks == []
    _untouched(a, b, c, d)
    approve = page.context["approve"]
    assert approve.count == 4
    assert approve.currency_rows() == [("CNY", Decimal("2469.75")), ("USD", Decimal("20.00"))]
    assert [(r["method"], r["currency"], r["count"], r["total"]) for r in approve.method_rows()] == [
        ("original_payment", "CNY", 2, Decimal("2469.00")),
        ("original_payment", "USD", 1, Decimal("20.00")),
        ("store_credit", "CNY", 1, Decimal("0.75")),
    ]
    html = page.content.decode()
    assert "You selected 4 payouts." in html
    assert "2,469.75 CNY" in html and "2,469.00 CNY" in html and "20.00 USD" in html and "0.75 CNY" in html
    assert "Store credit" in html  # the method's label, not its code


def test_confirming_approves_in_one_batch(fin, finance_user, django_capture_on_commit_callbacks):
    a, b = bulk_payouts(2)
    page = _action(fin, [a.pk, b.pk])

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = confirm(fin, page)

    a.refresh_from_db()
    b.refresh_from_db()
    assert a.state == b.state == Payout.State.APPROVED and a.batch_id == b.batch_id is not None
    assert a.approved_by == finance_user and len(callbacks) == 1
    assert response.redirect_chain[-1][0].startswith(CHANGELIST)
    assert any("Approved 2 payouts" in str(m) for m in response.context["messages"])


def test_a_confirmation_without_the_digest_or_after_a_change_approves_nothing_and_shows_the_page_again(fin, finance_user2):
    a, b = bulk_payouts(2)
    page = _action(fin, [a.pk, b.pk])

    # A payout changes meanwhile: the figures the user saw are no longer true.
    Payout.objects.filter(pk=b.pk).update(amount=Decimal("99.00"))
    again = fin.post(
        CHANGELIST, {"action": "approve_selected", "_selected_action": [a.pk, b.pk], "confirm": "yes", "digest": "x"}
    )
    assert again.status_code == 200 and 'id="selection-changed"' in again.content.decode()
    stale = confirm(fin, page)  # the old page's digest
    assert 'id="selection-changed"' in stale.content.decode()
    _untouched(a, b)
    assert stale.context["approve"].currency_rows() == [("CNY", Decimal("109.00"))]

    confirm(fin, stale)  # confirming the page that shows the new figures approves
    a.refresh_from_db()
    assert a.state == Payout.State.APPROVED


def test_the_page_says_who_must_approve_above_the_four_eyes_limit(
    client, admin_user, finance_user2, settings, django_capture_on_commit_callbacks
):
    settings.REFUND_DESK = {**settings.REFUND_DESK, "PAYOUT_FOUR_EYES_ABOVE": "100.00"}
    small = payout_through_services(price="40.00")
    big = payout_through_services(price="150.00")
    already = payout_through_services(price="300.00")
    mine = payout_through_services(price="30.00", approver=admin_user)  # admin_user approved the request
    services.payout_approve(payout_id=already.pk, actor=Actor.for_user(admin_user))  # its first approval
    client.force_login(admin_user)

    page = _action(client, [small.pk, big.pk, already.pk, mine.pk])

    ctx = page.context
    assert (ctx["approve"].count, ctx["first"].count, ctx["approved_first"].count, ctx["own_request"].count) == (1, 1, 1, 1)
    assert ctx["approve"].currency_rows() == [("CNY", Decimal("40.00"))]
    assert ctx["first"].numbers == [str(big)] and ctx["approved_first"].numbers == [str(already)]
    assert ctx["own_request"].numbers == [str(mine)]
    html = page.content.decode()
    assert 'id="first-approval"' in html and "Above 100.00, two different finance approvers are needed" in html
    assert 'id="approved-first"' in html and 'id="own-request"' in html

    with django_capture_on_commit_callbacks(execute=False):
        confirm(client, page)
    for p in (small, big, already, mine):
        p.refresh_from_db()
    assert small.state == Payout.State.APPROVED
    assert big.state == Payout.State.PENDING_APPROVAL and big.first_approved_by == admin_user
    assert already.state == Payout.State.PENDING_APPROVAL and already.approved_by is None
    assert mine.state == Payout.State.PENDING_APPROVAL and mine.first_approved_by is None

    # The second approver is told it will be paid now.
    client.force_login(finance_user2)
    second = _action(client, [already.pk])
    assert second.context["approve"].numbers == [str(already)] and second.context["approved_first"].count == 0


def test_nothing_approvable_offers_no_button(fin):
    (done,) = bulk_payouts(1, state=Payout.State.SUCCEEDED)
    page = _action(fin, [done.pk], query="?state=all")
    html = page.content.decode()
    assert 'id="nothing-to-approve"' in html and 'id="confirm-approval"' not in html
    assert page.context["not_pending"].count == 1


def test_select_all_confirms_the_whole_filter_with_its_total(fin, django_capture_on_commit_callbacks):
    pending = bulk_payouts(150, amount="10.01")
    (other,) = bulk_payouts(1, state=Payout.State.FAILED)

    page = _action(fin, [p.pk for p in pending[:100]], select_across=True)

    assert page.context["approve"].count == 150
    assert page.context["approve"].currency_rows() == [("CNY", Decimal("1501.50"))]
    assert "1,501.50 CNY" in page.content.decode()
    assert Payout.objects.filter(state=Payout.State.APPROVED).count() == 0
    with django_capture_on_commit_callbacks(execute=False):
        confirm(fin, page)
    assert Payout.objects.filter(state=Payout.State.APPROVED).count() == 150
    other.refresh_from_db()
    assert other.state == Payout.State.FAILED


def test_the_rows_button_is_a_link_to_the_confirmation_which_alone_approves(fin, finance_user, settings):
    settings.REFUND_DESK = {**settings.REFUND_DESK, "PAYOUT_FOUR_EYES_ABOVE": "5000.00"}
    payout = payout_through_services(price="1133")
    url = reverse("admin:refunds_payout_approve", args=[payout.pk])

    assert url in fin.get(CHANGELIST).content.decode()
    shown = fin.get(url)
    posted = fin.post(url, {"next": CHANGELIST})  # an old form's POST without the confirmation
    _untouched(payout)
    for page in (shown, posted):
        assert page.status_code == 200 and "1,133.00 CNY" in page.content.decode()

    response = confirm(fin, shown)
    payout.refresh_from_db()
    assert payout.state == Payout.State.APPROVED and payout.approved_by == finance_user
    assert response.redirect_chain[-1][0] == CHANGELIST


def test_the_confirmation_of_a_missing_payout_is_404(fin):
    assert fin.get(reverse("admin:refunds_payout_approve", args=[999999])).status_code == 404


def test_the_confirmation_costs_the_same_queries_for_10_and_500_payouts(fin):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count(n):
        Payout.objects.all().delete()
        ps = bulk_payouts(n)
        with CaptureQueriesContext(connection) as ctx:
            page = _action(fin, [ps[0].pk], select_across=True)
        assert page.context["approve"].count == n
        return len(ctx)

    assert count(10) == count(500)
