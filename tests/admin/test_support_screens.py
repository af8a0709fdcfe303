"""The support queue, its buttons and the evidence report, through the admin as support uses it."""

import re

import pytest
from django.urls import reverse
from django.utils.html import escape

from notifications.models import Notification
from orders.models import Channel, CustomerMessage
from refunds.models import RefundEvent, RefundRequest
from tests.admin.conftest import escalated_request
from tests.factories import OrderFactory, RefundRequestFactory

pytestmark = pytest.mark.django_db

State = RefundRequest.State


@pytest.fixture
def support_client(client, support_user):
    client.force_login(support_user)
    return client


def _listed(response):
    return {r.pk for r in response.context["cl"].result_list}


def test_queue_shows_under_review_and_awaiting_customer_oldest_first(support_client):
    waiting = RefundRequestFactory(state=State.AWAITING_CUSTOMER)
    review = RefundRequestFactory(state=State.UNDER_REVIEW)
    RefundRequestFactory(state=State.READY_FOR_PAYOUT)
    RefundRequestFactory(state=State.REJECTED)

    response = support_client.get(reverse("admin:refunds_refundrequest_changelist"))

    assert [r.pk for r in response.context["cl"].result_list] == [waiting.pk, review.pk]


def test_queue_row_says_why_it_was_escalated_and_the_risk(support_client):
    refund = escalated_request()
    response = support_client.get(reverse("admin:refunds_refundrequest_changelist"))
    body = response.content.decode()
    assert refund.number in body
    assert escape(refund.escalation_reason[:40]) in body
    assert f"{refund.amount_requested} CNY" in body


def test_queue_filters_by_state_channel_and_reason(support_client):
    a = RefundRequestFactory(state=State.UNDER_REVIEW, reason="damaged")
    b = RefundRequestFactory(state=State.UNDER_REVIEW, reason="size_fit")
    done = RefundRequestFactory(state=State.REFUNDED)
    url = reverse("admin:refunds_refundrequest_changelist")

    assert _listed(support_client.get(url, {"reason": "damaged"})) == {a.pk}
    assert _listed(support_client.get(url, {"channel__id__exact": b.channel_id})) == {b.pk}
    assert _listed(support_client.get(url, {"queue": "refunded"})) == {done.pk}
    assert _listed(support_client.get(url, {"queue": "all"})) == {a.pk, b.pk, done.pk}
    assert _listed(support_client.get(url, {"age": "gt7"})) == set()
    assert _listed(support_client.get(url, {"age": "lt1"})) == {a.pk, b.pk}


def test_search_by_request_number_or_order_number(support_client):
    a = RefundRequestFactory(state=State.UNDER_REVIEW)
    b = RefundRequestFactory(state=State.UNDER_REVIEW)
    url = reverse("admin:refunds_refundrequest_changelist")
    assert _listed(support_client.get(url, {"q": a.number})) == {a.pk}
    assert _listed(support_client.get(url, {"q": b.order.number})) == {b.pk}
    assert _listed(support_client.get(url, {"q": "nothing-like-it"})) == set()


def test_change_page_shows_buttons_event_log_and_masked_customer(support_client):
    refund = escalated_request()
    response = support_client.get(reverse("admin:refunds_refundrequest_change", args=[refund.pk]))
    body = response.content.decode()
    for name in ["approve", "reject", "ask", "offer"]:
        assert f'id="action-{name}"' in body
    assert 'id="action-verdict"' not in body  # only once the request is decided
    assert 'id="event-log"' in body and "submit" in body and "escalate" in body
    phone = refund.customer.phone
    assert phone not in body
    assert f"+86 {phone[3:6]}****{phone[-4:]}" in body
    assert reverse("admin:refunds_refundrequest_evidence", args=[refund.pk]) in body
    assert f"{refund.order.number} ({refund.channel})</td>" in body  # asked on the order's own channel
    assert "asked through" not in body


def test_finance_sees_the_request_but_no_review_buttons_and_the_full_phone(client, finance_user):
    refund = escalated_request()
    client.force_login(finance_user)
    body = client.get(reverse("admin:refunds_refundrequest_change", args=[refund.pk])).content.decode()
    assert 'id="action-approve"' not in body
    assert refund.customer.phone in body


def test_approve_button_moves_the_request_and_logs_who(support_client, support_user):
    refund = escalated_request()
    response = support_client.post(
        reverse("admin:refunds_refundrequest_act", args=[refund.pk, "approve"]), {"approve-note": "ok"}, follow=True
    )
    refund.refresh_from_db()
    assert refund.state == State.AWAITING_RETURN
    assert refund.approved_by == support_user
    assert RefundEvent.objects.filter(request=refund, action="approve", actor_user=support_user).exists()
    assert "approval recorded" in response.content.decode()


def test_reject_needs_a_reason_and_changes_nothing_without_one(support_client):
    refund = escalated_request()
    events = RefundEvent.objects.filter(request=refund).count()
    response = support_client.post(
        reverse("admin:refunds_refundrequest_act", args=[refund.pk, "reject"]), {"reject-reason": ""}, follow=True
    )
    refund.refresh_from_db()
    assert refund.state == State.UNDER_REVIEW
    assert RefundEvent.objects.filter(request=refund).count() == events
    assert "required" in response.content.decode()


def test_reject_sends_the_customer_the_reason(support_client):
    refund = escalated_request()
    support_client.post(
        reverse("admin:refunds_refundrequest_act", args=[refund.pk, "reject"]), {"reject-reason": "Outside what we cover."}
    )
    refund.refresh_from_db()
    assert refund.state == State.REJECTED
    assert refund.decision_reason == "Outside what we cover."
    assert Notification.objects.filter(refund=refund, event="refund_rejected").exists()


def test_a_refused_transition_is_a_message_not_an_error(support_client):
    refund = escalated_request()
    support_client.post(reverse("admin:refunds_refundrequest_act", args=[refund.pk, "ask"]), {"ask-question": "Photo?"})
    events = RefundEvent.objects.filter(request=refund).count()
    response = support_client.post(
        reverse("admin:refunds_refundrequest_act", args=[refund.pk, "approve"]), {"approve-note": ""}, follow=True
    )
    refund.refresh_from_db()
    assert response.status_code == 200
    assert refund.state == State.AWAITING_CUSTOMER
    assert RefundEvent.objects.filter(request=refund).count() == events
    assert "only a request under review can be approved" in response.content.decode()


def test_offer_alternative_is_stored_for_the_customer(support_client):
    refund = escalated_request()
    support_client.post(
        reverse("admin:refunds_refundrequest_act", args=[refund.pk, "offer"]),
        {"offer-kind": "replacement", "offer-description": "A new one, shipped today."},
    )
    refund.refresh_from_db()
    assert refund.state == State.AWAITING_CUSTOMER
    assert refund.alternative == {"kind": "replacement", "description": "A new one, shipped today."}


def test_evidence_report_is_readable_and_masks_payment_for_support(support_client):
    order = OrderFactory(lines=[("SKU-1", 1, "80.00")])
    CustomerMessage.objects.create(customer=order.customer, order=order, channel=order.channel, direction="in", body="It is torn")
    refund = escalated_request(order=order)
    response = support_client.get(reverse("admin:refunds_refundrequest_evidence", args=[refund.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Rule trace" in body and "Order timeline" in body and "Shipments and tracking" in body
    assert "It is torn" in body
    assert "What was asked" in body and refund.customer.external_id in body and "Not as described" in body
    assert order.number in body
    assert "dispute" in body  # the rule's sentence, not a JSON blob
    assert f"PAY-{order.number}" not in body
    assert "PAY-****" in body
    assert '{"' not in body


def test_evidence_report_shows_finance_the_payment_reference(client, finance_user):
    refund = escalated_request()
    client.force_login(finance_user)
    body = client.get(reverse("admin:refunds_refundrequest_evidence", args=[refund.pk])).content.decode()
    assert f"PAY-{refund.order.number}" in body


def test_create_for_customer_finds_the_order_and_submits_through_the_service(support_client, support_user):
    order = OrderFactory(lines=[("SKU-1", 2, "30.00"), ("SKU-2", 1, "12.50")])
    page = support_client.get(reverse("admin:refunds_refundrequest_create"), {"order": order.number})
    body = page.content.decode()
    assert "SKU-1" in body and "SKU-2" in body

    response = support_client.post(
        reverse("admin:refunds_refundrequest_create"),
        {
            "order_id": order.pk,
            "idempotency_key": page.context["idempotency_key"],
            "sku": ["SKU-1"],
            "qty-SKU-1": "1",
            "qty-SKU-2": "1",
            "reason": "damaged",
            "kind": "return_and_refund",
            "refund_method": "store_credit",
            "customer_note": "called us",
        },
    )
    refund = RefundRequest.objects.get(order=order)
    assert response.status_code == 302
    assert refund.channel.kind == Channel.Kind.SUPPORT_CHAT
    assert refund.order.channel_id == order.channel_id
    assert [(rl.order_line.sku, rl.quantity) for rl in refund.lines.all()] == [("SKU-1", 1)]
    assert str(refund.amount_requested) == "30.00"
    assert refund.events.get(action="submit").actor_user == support_user
    # The page names the order's own channel, and the support chat the request came through.
    page = support_client.get(response["Location"]).content.decode()
    assert f"{order.number} ({order.channel}) · asked through {refund.channel}" in page


def test_create_for_customer_refuses_more_than_is_left_and_writes_nothing(support_client):
    order = OrderFactory(lines=[("SKU-1", 1, "30.00")])
    response = support_client.post(
        reverse("admin:refunds_refundrequest_create"),
        {
            "order_id": order.pk,
            "idempotency_key": "x1",
            "sku": ["SKU-1"],
            "qty-SKU-1": "5",
            "reason": "damaged",
            "kind": "refund_only",
            "refund_method": "original_payment",
        },
        follow=True,
    )
    assert "only 1 left to refund" in response.content.decode()
    assert not RefundRequest.objects.filter(order=order).exists()


def test_create_for_customer_makes_support_choose_the_reason_and_kind(support_client):
    order = OrderFactory(lines=[("SKU-1", 1, "30.00")])
    page = support_client.get(reverse("admin:refunds_refundrequest_create"), {"order": order.number}).content.decode()
    assert '<select name="reason" required><option value="">' in page
    assert '<select name="kind" required><option value="">' in page

    response = support_client.post(
        reverse("admin:refunds_refundrequest_create"),
        {"order_id": order.pk, "idempotency_key": "x2", "sku": ["SKU-1"], "qty-SKU-1": "1", "reason": "", "kind": ""},
        follow=True,
    )

    assert "is not a reason code" in response.content.decode()  # if a browser ignores `required`
    assert not RefundRequest.objects.filter(order=order).exists()


def test_the_same_form_posted_twice_creates_one_request(support_client):
    order = OrderFactory(lines=[("SKU-1", 2, "30.00")])
    data = {
        "order_id": order.pk,
        "idempotency_key": "twice",
        "sku": ["SKU-1"],
        "qty-SKU-1": "1",
        "reason": "damaged",
        "kind": "refund_only",
        "refund_method": "original_payment",
    }
    support_client.post(reverse("admin:refunds_refundrequest_create"), data)
    support_client.post(reverse("admin:refunds_refundrequest_create"), data)
    assert RefundRequest.objects.filter(order=order).count() == 1


def test_a_failed_inspection_reaches_support_with_the_inspection_attached(client, support_user, warehouse_user):
    from tests.admin.conftest import awaiting_return_request

    refund = awaiting_return_request()
    client.force_login(warehouse_user)
    client.post(reverse("admin:refunds_returnparcel_scan"), {"code": refund.return_parcel.return_code})
    client.post(
        reverse("admin:refunds_returnparcel_inspect", args=[refund.pk]),
        {"grade": "damaged", "disposition": "dispose", "note": "screen cracked"},
    )
    client.force_login(support_user)
    queue = client.get(reverse("admin:refunds_refundrequest_changelist")).content.decode()
    page = client.get(reverse("admin:refunds_refundrequest_change", args=[refund.pk])).content.decode()
    assert refund.number in queue and "inspection failed" in queue
    inspection = page[page.index('id="inspection"') :]
    assert "Damaged" in inspection and "Dispose" in inspection and "screen cracked" in inspection
    assert 'id="action-approve"' in page


def test_evidence_report_lists_risk_signals_in_words(support_client):
    refund = escalated_request()
    evidence = {
        **refund.evidence,
        "risk": {
            "score": 72,
            "level": "high",
            "signals": [{"code": "burst", "text": "5 refund requests in 24 hours, 9 in 7 days", "points": 30}],
        },
    }
    RefundRequest.objects.filter(pk=refund.pk).update(evidence=evidence)
    body = support_client.get(reverse("admin:refunds_refundrequest_evidence", args=[refund.pk])).content.decode()
    assert "5 refund requests in 24 hours, 9 in 7 days (+30)" in body
    assert "72 high" in body
    assert "burst" not in body


def test_the_order_page_lists_its_refund_requests_newest_first_with_links(support_client):
    first = escalated_request()
    second = RefundRequestFactory(order=first.order, state=RefundRequest.State.REJECTED)
    RefundRequestFactory(state=RefundRequest.State.UNDER_REVIEW)  # another order's

    page = support_client.get(reverse("admin:orders_order_change", args=[first.order_id])).content.decode()

    links = re.findall(r'<a href="/admin/refunds/refundrequest/(\d+)/change/">(RF-\d+)</a>', page)
    assert links == [(str(second.pk), second.number), (str(first.pk), first.number)]
    assert f"{second.number}</a> · Rejected" in page
