"""Finance screens: the payout queue, bulk approval with separation of duties, retries,
batches, reconciliation, and who may open any of it."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from config.actors import Actor
from refunds import services
from refunds.gateways.simulated import SimulatedGateway
from refunds.models import Payout, PayoutBatch, RefundEvent, RefundMethod, RefundRequest
from tests.admin.conftest import confirm_approval
from tests.factories import OrderFactory, RefundRequestFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:refunds_payout_changelist")


def payout_through_services(*, price="50.00", approver=None) -> Payout:
    """A refund-only request escalated, approved by a support person, with its pending payout."""
    order = OrderFactory(lines=[("SKU-1", 1, Decimal(price))])
    refund, _ = services.refund_submit(
        actor=Actor.for_channel(order.channel),
        channel=order.channel,
        idempotency_key=f"fin-{order.pk}",
        order_number=order.number,
        kind="refund_only",
        reason="not_as_described",
    )
    services.refund_evaluate(refund_id=refund.pk)
    approver = approver or UserFactory(username=f"support-{order.pk}", role="support")
    services.refund_approve(refund_id=refund.pk, actor=Actor.for_user(approver))
    return Payout.objects.get(request=refund)


def bulk_payouts(n: int, *, state=Payout.State.PENDING_APPROVAL, amount="10.00", requests=3) -> list[Payout]:
    """Many payouts cheaply (for list sizes): a few requests, payouts spread over them."""
    reqs = [RefundRequestFactory(state=RefundRequest.State.READY_FOR_PAYOUT) for _ in range(requests)]
    now = timezone.now()
    return Payout.objects.bulk_create(
        [
            Payout(
                request=reqs[i % requests],
                method="original_payment",
                amount=Decimal(amount),
                currency="CNY",
                state=state,
                created_at=now - timedelta(minutes=n - i),
            )
            for i in range(n)
        ]
    )


def approve_action(client, ids, *, query="", select_across=False):
    """The list's action, then its confirmation page's button."""
    page = client.post(
        CHANGELIST + query,
        {"action": "approve_selected", "_selected_action": ids, "index": 0, "select_across": int(select_across)},
    )
    return confirm_approval(client, page)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def events(payout, action):
    return RefundEvent.objects.filter(payout=payout, action=action).count()


@pytest.fixture
def fin(client, finance_user):
    client.force_login(finance_user)
    return client


# --- the queue ---------------------------------------------------------------------------


def test_the_queue_shows_pending_payouts_oldest_first_with_customer_and_amount(fin):
    old, new = bulk_payouts(2)
    bulk_payouts(1, state=Payout.State.SUCCEEDED)

    response = fin.get(CHANGELIST)

    assert response.status_code == 200
    rows = list(response.context["cl"].result_list)
    assert [p.pk for p in rows] == [old.pk, new.pk]  # the succeeded one is not in the queue
    html = response.content.decode()
    assert 'data-cents="1000" data-currency="CNY"' in html
    assert old.request.customer.phone in html  # finance sees the phone (PII) in full
    assert "selection-total" in html


def test_the_failed_view_shows_the_gateway_error_and_a_retry_button(fin):
    (failed,) = bulk_payouts(1, state=Payout.State.FAILED)
    Payout.objects.filter(pk=failed.pk).update(error="card_declined: insufficient funds")

    response = fin.get(CHANGELIST + "?state=failed")

    assert [p.pk for p in response.context["cl"].result_list] == [failed.pk]
    html = response.content.decode()
    assert "card_declined: insufficient funds" in html
    assert reverse("admin:refunds_payout_retry", args=[failed.pk]) in html


def test_search_finds_a_payout_by_its_number_its_request_or_its_order(fin):
    a, b = bulk_payouts(2, requests=2)

    for term in (str(a), a.request.number, a.request.order.number, str(a.pk)):
        response = fin.get(CHANGELIST, {"q": term})
        assert [p.pk for p in response.context["cl"].result_list] == [a.pk], term
    assert list(fin.get(CHANGELIST, {"q": "PO-999999"}).context["cl"].result_list) == []


# --- bulk approval -----------------------------------------------------------------------


def test_bulk_approve_approves_in_one_batch_with_one_event_per_payout(fin, finance_user, django_capture_on_commit_callbacks):
    a, b = payout_through_services(), payout_through_services(price="80.00")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = approve_action(fin, [a.pk, b.pk])

    a.refresh_from_db()
    b.refresh_from_db()
    assert a.state == b.state == Payout.State.APPROVED
    assert a.approved_by == b.approved_by == finance_user
    assert a.batch_id == b.batch_id is not None
    assert events(a, "payout_approve") == events(b, "payout_approve") == 1
    assert len(callbacks) == 1  # one batch execution task, not one per payout
    assert any("Approved 2 payouts" in m for m in messages_of(response))


def test_bulk_approve_refuses_the_person_who_approved_the_request_and_changes_nothing_for_them(
    client, admin_user, django_capture_on_commit_callbacks
):
    mine = payout_through_services(approver=admin_user)
    other = payout_through_services()
    client.force_login(admin_user)

    with django_capture_on_commit_callbacks(execute=True):
        response = approve_action(client, [mine.pk, other.pk])

    mine.refresh_from_db()
    other.refresh_from_db()
    assert mine.state == Payout.State.PENDING_APPROVAL
    assert mine.approved_by is None and mine.first_approved_by is None and mine.batch is None
    assert not RefundEvent.objects.filter(payout=mine).exists()
    assert other.state == Payout.State.SUCCEEDED  # approved, then paid by the batch task
    msgs = " ".join(messages_of(response))
    assert "Skipped 1" in msgs and "you approved its refund request" in msgs and str(mine) in msgs


def test_above_the_four_eyes_limit_two_different_finance_people_must_approve(
    client, finance_user, finance_user2, settings, django_capture_on_commit_callbacks
):
    settings.REFUND_DESK = {**settings.REFUND_DESK, "PAYOUT_FOUR_EYES_ABOVE": "100.00"}
    big = payout_through_services(price="150.00")
    client.force_login(finance_user)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        first = approve_action(client, [big.pk])
    big.refresh_from_db()
    assert big.state == Payout.State.PENDING_APPROVAL and big.first_approved_by == finance_user
    assert callbacks == []  # nothing is paid on a first approval
    assert any("First approval recorded on 1 payout" in m for m in messages_of(first))

    again = approve_action(client, [big.pk])
    big.refresh_from_db()
    assert big.state == Payout.State.PENDING_APPROVAL and big.approved_by is None
    assert any("needs a second, different approver" in m for m in messages_of(again))
    assert events(big, "payout_first_approval") == 1 and events(big, "payout_approve") == 0

    client.force_login(finance_user2)
    with django_capture_on_commit_callbacks(execute=True):
        approve_action(client, [big.pk])
    big.refresh_from_db()
    assert big.state == Payout.State.SUCCEEDED
    assert big.approved_by == finance_user2 and big.first_approved_by == finance_user


def test_select_all_across_pages_approves_the_whole_filtered_queue_in_one_request(fin, django_capture_on_commit_callbacks):
    pending = bulk_payouts(150)  # more than one page of 100
    (failed,) = bulk_payouts(1, state=Payout.State.FAILED)

    with django_capture_on_commit_callbacks(execute=False):
        # What the browser sends for "select all 150": one page of boxes plus select_across.
        response = approve_action(fin, [p.pk for p in pending[:100]], select_across=True)

    assert Payout.objects.filter(pk__in=[p.pk for p in pending], state=Payout.State.APPROVED).count() == 150
    assert RefundEvent.objects.filter(action="payout_approve").count() == 150
    assert PayoutBatch.objects.count() == 1
    failed.refresh_from_db()
    assert failed.state == Payout.State.FAILED  # outside the filter: untouched
    assert any("Approved 150 payouts" in m for m in messages_of(response))


def test_single_approve_button_confirms_first_and_needs_the_permission(client, fin, support_user, finance_user):
    payout = payout_through_services()
    url = reverse("admin:refunds_payout_approve", args=[payout.pk])

    assert fin.get(url).status_code == 200  # the confirmation page
    client.force_login(support_user)
    assert client.get(url).status_code == 403
    assert client.post(url, {"confirm": "yes"}).status_code == 403
    payout.refresh_from_db()
    assert payout.state == Payout.State.PENDING_APPROVAL and not RefundEvent.objects.filter(payout=payout).exists()

    client.force_login(finance_user)
    response = confirm_approval(client, client.get(url, {"next": CHANGELIST}))
    payout.refresh_from_db()
    assert payout.state == Payout.State.APPROVED and payout.approved_by == finance_user
    assert any("approved" in m for m in messages_of(response))


def test_void_action_refuses_a_requests_last_open_payout(fin):
    payout = payout_through_services()

    response = fin.post(CHANGELIST, {"action": "void_selected", "_selected_action": [payout.pk], "index": 0}, follow=True)

    payout.refresh_from_db()
    assert payout.state == Payout.State.PENDING_APPROVAL and events(payout, "payout_void") == 0
    assert any("last open payout" in m for m in messages_of(response))


def test_the_void_button_offers_every_refund_method_as_a_replacement(fin):
    # The template words each option ("Void and pay as a coupon"): a new method must be added there.
    payout = payout_through_services()
    page = fin.get(reverse("admin:refunds_payout_change", args=[payout.pk])).content.decode()
    for method in RefundMethod.values:
        assert f'<option value="{method}">' in page, method


def test_void_button_with_a_replacement_reissues_the_payout_as_store_credit(fin):
    payout = payout_through_services()
    url = reverse("admin:refunds_payout_void", args=[payout.pk])

    fin.post(url, {"reissue_method": "store_credit", "next": CHANGELIST}, follow=True)

    payout.refresh_from_db()
    assert payout.state == Payout.State.VOIDED and events(payout, "payout_void") == 1
    replacement = Payout.objects.exclude(pk=payout.pk).get(request=payout.request)
    assert (replacement.state, replacement.method, replacement.amount) == (
        Payout.State.PENDING_APPROVAL,
        "store_credit",
        payout.amount,
    )


# --- failed payouts ----------------------------------------------------------------------


def test_a_failed_payout_is_retried_from_the_admin_and_then_succeeds(fin, finance_user, django_capture_on_commit_callbacks):
    payout = payout_through_services()
    SimulatedGateway.set_mode("fail", calls=1)
    with django_capture_on_commit_callbacks(execute=True):
        services.payout_approve(payout_id=payout.pk, actor=Actor.for_user(finance_user))
    payout.refresh_from_db()
    assert payout.state == Payout.State.FAILED and payout.error

    with django_capture_on_commit_callbacks(execute=True):
        response = fin.post(
            CHANGELIST + "?state=failed",
            {"action": "retry_selected", "_selected_action": [payout.pk], "index": 0},
            follow=True,
        )

    payout.refresh_from_db()
    assert payout.state == Payout.State.SUCCEEDED and payout.attempts == 2
    assert events(payout, "payout_retry") == 1
    refund = RefundRequest.objects.get(pk=payout.request_id)
    assert refund.state == RefundRequest.State.REFUNDED
    assert any("Retried 1" in m for m in messages_of(response))


def test_retrying_a_payout_that_did_not_fail_is_refused_with_a_message(fin):
    payout = payout_through_services()

    response = fin.post(reverse("admin:refunds_payout_retry", args=[payout.pk]), follow=True)

    payout.refresh_from_db()
    assert payout.state == Payout.State.PENDING_APPROVAL
    assert any("only a failed payout can be retried" in m for m in messages_of(response))


# --- batches and reconciliation ----------------------------------------------------------


def test_batches_list_shows_each_batch_size_and_total(fin, finance_user):
    ps = bulk_payouts(3, amount="12.50")
    result = services.payout_approve_bulk(payout_ids=[p.pk for p in ps], actor=Actor.for_user(finance_user))

    response = fin.get(reverse("admin:refunds_payoutbatch_changelist"))

    (batch,) = response.context["cl"].result_list
    assert batch.pk == result.batch.pk and batch.payout_count == 3 and batch.payout_total == Decimal("37.50")


def _succeeded(amount, method, at):
    (p,) = bulk_payouts(1, state=Payout.State.SUCCEEDED, amount=amount, requests=1)
    Payout.objects.filter(pk=p.pk).update(succeeded_at=at, method=method)
    return p


def test_reconciliation_sums_succeeded_payouts_by_local_day_and_method(fin):
    day = timezone.localdate() - timedelta(days=1)
    noon = timezone.make_aware(timezone.datetime.combine(day, timezone.datetime.min.time())) + timedelta(hours=12)
    _succeeded("10.10", "original_payment", noon)
    _succeeded("20.20", "original_payment", noon + timedelta(hours=1))
    _succeeded("5.00", "store_credit", noon)
    _succeeded("99.00", "store_credit", noon - timedelta(days=3))  # outside the range
    (pending,) = bulk_payouts(1, amount="7.00", requests=1)  # not paid: never counted

    response = fin.get(reverse("admin:refunds_payout_reconciliation"), {"start": day, "end": day})

    rows = [(r["day"], r["method"], r["count"], r["total"]) for r in response.context["rows"]]
    assert "Store credit" in response.content.decode()
    assert rows == [(day, "original_payment", 2, Decimal("30.30")), (day, "store_credit", 1, Decimal("5.00"))]
    assert response.context["totals"] == [("CNY", {"count": 3, "total": Decimal("35.30")})]

    csv_response = fin.get(reverse("admin:refunds_payout_reconciliation"), {"start": day, "end": day, "format": "csv"})
    lines = csv_response.content.decode("utf-8-sig").strip().splitlines()
    assert lines[0] == "day,method,currency,count,total,method code"
    assert lines[1:] == [
        f"{day},Original payment,CNY,2,30.30,original_payment",
        f"{day},Store credit,CNY,1,5.00,store_credit",
    ]


def test_reconciliation_rejects_a_backwards_range(fin):
    response = fin.get(reverse("admin:refunds_payout_reconciliation"), {"start": "2026-02-02", "end": "2026-02-01"})
    assert response.status_code == 200 and response.context["rows"] == []
    assert "before the start date" in response.content.decode()


# --- permissions -------------------------------------------------------------------------

FINANCE_PAGES = [
    ("admin:refunds_payout_changelist", []),
    ("admin:refunds_payoutbatch_changelist", []),
    ("admin:refunds_payout_reconciliation", []),
    ("admin:refunds_reconciliationdifference_changelist", []),
    ("admin:refunds_payout_export", ["xlsx"]),
    ("admin:refunds_refundrequest_export", []),
]


@pytest.mark.parametrize("role", ["support", "warehouse", "risk"])
def test_other_roles_are_refused_every_finance_page_and_action(client, role):
    payout = payout_through_services()
    user = UserFactory(username=f"{role}-x", role=role)
    client.force_login(user)

    for name, args in FINANCE_PAGES:
        assert client.get(reverse(name, args=args)).status_code == 403, name
    assert client.get(reverse("admin:refunds_payout_change", args=[payout.pk])).status_code == 403
    for name in ("approve", "void", "retry"):
        assert client.post(reverse(f"admin:refunds_payout_{name}", args=[payout.pk])).status_code == 403
    response = client.post(CHANGELIST, {"action": "approve_selected", "_selected_action": [payout.pk], "index": 0})
    assert response.status_code == 403
    assert client.post(reverse("admin:orders_order_import")).status_code == 403

    payout.refresh_from_db()
    assert payout.state == Payout.State.PENDING_APPROVAL and payout.first_approved_by is None
    assert not RefundEvent.objects.filter(payout=payout).exists()


@pytest.mark.parametrize("role", ["finance", "admin"])
def test_finance_and_admin_open_every_finance_page(client, role, finance_user, admin_user):
    payout = payout_through_services()
    client.force_login(finance_user if role == "finance" else admin_user)
    for name, args in FINANCE_PAGES:
        assert client.get(reverse(name, args=args)).status_code == 200, name
    response = client.get(reverse("admin:refunds_payout_change", args=[payout.pk]))
    assert response.status_code == 200
    assert reverse("admin:refunds_payout_approve", args=[payout.pk]) in response.content.decode()


def test_finance_may_not_import_orders(fin):
    assert fin.get(reverse("admin:orders_order_import")).status_code == 403


# --- query counts: the same for 10 and 500 rows ------------------------------------------


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx)


@pytest.mark.parametrize(
    "url",
    [
        CHANGELIST,
        CHANGELIST + "?state=failed",
        CHANGELIST + "?state=outcome_unknown",
        CHANGELIST + "?state=all",
        reverse("admin:refunds_payoutbatch_changelist"),
        reverse("admin:refunds_reconciliationdifference_changelist"),
    ],
)
def test_finance_changelists_run_the_same_queries_for_10_and_500_rows(fin, finance_user, url):
    def fill(n):
        ps = bulk_payouts(n)
        bulk_payouts(n, state=Payout.State.FAILED)
        bulk_payouts(n, state=Payout.State.OUTCOME_UNKNOWN)
        services.payout_approve_bulk(payout_ids=[p.pk for p in ps[: n // 2]], actor=Actor.for_user(finance_user))

    fill(10)
    small = _queries(fin, url)
    fill(490)
    large = _queries(fin, url)
    assert small == large
    assert large <= 8


# --- unknown outcomes, permanent declines, the gateway's books -------------------------------


def _sent(payout, mode, finance_user):
    services.payout_approve(payout_id=payout.pk, actor=Actor.for_user(finance_user))
    SimulatedGateway.set_mode(mode, calls=1)
    services.payout_execute(payout_id=payout.pk)
    payout.refresh_from_db()
    return payout


def test_the_unknown_outcome_queue_shows_the_last_answer_and_no_button_that_moves_money(fin, finance_user):
    payout = _sent(payout_through_services(), "timeout", finance_user)
    assert payout.state == Payout.State.OUTCOME_UNKNOWN

    page = fin.get(CHANGELIST + "?state=outcome_unknown").content.decode()

    assert str(payout) in page and "timeout: gateway did not answer in time" in page
    assert reverse("admin:refunds_payout_ask", args=[payout.pk]) in page
    for name in ("approve", "retry", "void"):
        assert reverse(f"admin:refunds_payout_{name}", args=[payout.pk]) not in page
    change = fin.get(reverse("admin:refunds_payout_change", args=[payout.pk])).content.decode()
    assert 'id="outcome-unknown"' in change
    assert 'id="void-payout"' not in change and 'id="retry-payout"' not in change


def test_voiding_an_unknown_outcome_by_hand_is_refused_and_changes_nothing(fin, finance_user):
    payout = _sent(payout_through_services(), "timeout_after_success", finance_user)
    before = RefundEvent.objects.count()

    response = fin.post(
        reverse("admin:refunds_payout_void", args=[payout.pk]), {"reissue_method": "original_payment"}, follow=True
    )

    assert any("outcome is unknown" in m for m in messages_of(response))
    assert Payout.objects.get(pk=payout.pk).state == Payout.State.OUTCOME_UNKNOWN
    assert Payout.objects.filter(request=payout.request).count() == 1
    assert RefundEvent.objects.count() == before


def test_asking_the_gateway_from_the_queue_records_its_answer(fin, finance_user, django_capture_on_commit_callbacks):
    payout = _sent(payout_through_services(), "timeout_after_success", finance_user)

    with django_capture_on_commit_callbacks(execute=True):
        response = fin.post(reverse("admin:refunds_payout_ask", args=[payout.pk]))

    assert response.status_code == 302
    assert Payout.objects.get(pk=payout.pk).state == Payout.State.SUCCEEDED


def test_a_permanent_decline_offers_another_method_instead_of_retry(fin, finance_user):
    payout = _sent(payout_through_services(), "decline_permanent", finance_user)

    page = fin.get(CHANGELIST + "?state=failed").content.decode()
    assert reverse("admin:refunds_payout_retry", args=[payout.pk]) not in page
    assert "Pay another way" in page
    change = fin.get(reverse("admin:refunds_payout_change", args=[payout.pk])).content.decode()
    assert 'id="declined-for-good"' in change and 'id="retry-payout"' not in change
    assert 'value="store_credit"' in change and 'id="void-payout"' in change


def test_the_reconciliation_screen_checks_a_day_and_lists_a_planted_difference(
    fin, finance_user, django_capture_on_commit_callbacks
):
    payout = _sent(payout_through_services(), "ok", finance_user)
    SimulatedGateway.plant_refund(
        idempotency_key="00000000-0000-0000-0000-000000000001",
        payment_reference=f"PAY-{payout.request.order.number}",
        amount=Decimal("7.00"),
    )
    url = reverse("admin:refunds_payout_reconciliation")
    assert "Not checked yet" in fin.get(url).content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = fin.post(url, {"day": timezone.localdate().isoformat()})
    assert response.status_code == 302

    page = fin.get(url).content.decode()
    assert "Differences found" in page
    assert "Paid by the gateway, not in our books" in page and "7.00 CNY" in page
    assert "The gateway refunded one payment more than our books say" in page


def test_a_difference_is_resolved_on_its_page_with_a_note(fin, finance_user):
    from refunds import reconciliation
    from refunds.models import ReconciliationDifference

    payout = _sent(payout_through_services(), "ok", finance_user)
    SimulatedGateway.plant_refund(idempotency_key="not-ours", payment_reference="PAY-ELSEWHERE", amount=Decimal("3.00"))
    reconciliation.reconciliation_run(day=timezone.localdate(), actor=Actor.for_user(finance_user))
    diff = ReconciliationDifference.objects.get()
    resolve = reverse("admin:refunds_reconciliationdifference_resolve", args=[diff.pk])
    assert resolve in fin.get(reverse("admin:refunds_reconciliationdifference_change", args=[diff.pk])).content.decode()

    fin.post(resolve, {"note": ""})
    diff.refresh_from_db()
    assert diff.resolved_at is None

    fin.post(resolve, {"note": "A test refund by the gateway's support; reversed."})
    diff.refresh_from_db()
    assert (diff.resolved_by, diff.resolution_note) == (finance_user, "A test refund by the gateway's support; reversed.")
    assert payout.pk  # our payout was never touched
    assert Payout.objects.get(pk=payout.pk).state == Payout.State.SUCCEEDED


@pytest.mark.parametrize("role", ["support", "warehouse", "risk"])
def test_other_roles_can_not_resolve_or_check(client, role):
    from refunds.models import ReconciliationDifference

    diff = ReconciliationDifference.objects.create(kind="paid_there_not_here", day=timezone.localdate(), fingerprint="x")
    client.force_login(UserFactory(username=f"{role}-y", role=role))
    assert (
        client.post(reverse("admin:refunds_reconciliationdifference_resolve", args=[diff.pk]), {"note": "n"}).status_code == 403
    )
    assert client.post(reverse("admin:refunds_payout_reconciliation"), {"day": "2026-01-01"}).status_code == 403
    diff.refresh_from_db()
    assert diff.resolved_at is None
