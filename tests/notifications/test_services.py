import pytest
from django.db import transaction

from notifications import selectors, services
from notifications.models import MessageTemplate, Notification, StaffInboxRead
from refunds.models import RefundRequest
from tests.factories import CustomerFactory
from tests.notifications.conftest import evaluated, submitted

pytestmark = pytest.mark.django_db
S = Notification.Status


def test_a_customer_message_is_written_with_the_state_change_and_sent_after_commit(
    django_capture_on_commit_callbacks, memory_sms, mailoutbox
):
    # given a customer who reads English
    customer = CustomerFactory(language="en", phone="+8613800138000", email="li@example.com")
    # when a request is submitted
    with django_capture_on_commit_callbacks(execute=True):
        refund = submitted(customer=customer)
    # then one SMS and one e-mail about it, in English, each sent once
    rows = Notification.objects.filter(refund=refund, event="request_received")
    assert sorted(rows.values_list("channel", "status")) == [("email", S.SENT), ("sms", S.SENT)]
    sms_row = rows.get(channel="sms")
    assert sms_row.body.startswith(f"Refund Desk: we received your refund request {refund.number}")
    # (the evaluation task ran after commit too, and sent its own messages)
    mine = [m for m in memory_sms if m["reference"] == sms_row.idempotency_key]
    assert mine == [{"to": "+8613800138000", "body": sms_row.body, "reference": sms_row.idempotency_key}]
    email_id = f"<{rows.get(channel='email').idempotency_key}@refund-desk>"
    (mail,) = [m for m in mailoutbox if m.extra_headers["Message-ID"] == email_id]
    assert mail.to == ["li@example.com"]
    assert mail.subject == f"We received your refund request {refund.number}"


def test_chinese_customers_get_chinese_text(django_capture_on_commit_callbacks, memory_sms):
    customer = CustomerFactory(language="zh-hans", email="")
    with django_capture_on_commit_callbacks(execute=True):
        refund = submitted(customer=customer)
    assert memory_sms[0]["body"].startswith("【退款服务】")
    assert refund.number in memory_sms[0]["body"]


def test_an_opted_out_customer_gets_no_sms_but_still_email(django_capture_on_commit_callbacks, memory_sms, mailoutbox):
    customer = CustomerFactory(sms_opt_out=True)
    with django_capture_on_commit_callbacks(execute=True):
        refund = submitted(customer=customer)
    assert not Notification.objects.filter(refund=refund, channel="sms").exists()
    assert memory_sms == []
    assert len(mailoutbox) == Notification.objects.filter(refund=refund, channel="email").count() >= 1


def test_nothing_is_written_or_sent_for_a_transaction_that_rolled_back(
    django_capture_on_commit_callbacks, memory_sms, mailoutbox
):
    refund = submitted()
    before = Notification.objects.count()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            services.notify_customer(refund=refund, event="refund_approved")
            services.notify_staff(role="finance", event="ready_for_payout", refund=refund, context={"amount": "1.00"})
            raise RuntimeError("the state change failed after the messages were queued")
    assert Notification.objects.count() == before
    assert callbacks == []
    assert memory_sms == []
    assert mailoutbox == []


def test_staff_messages_are_in_the_inbox_at_commit_without_a_task(django_capture_on_commit_callbacks):
    refund = submitted()
    with django_capture_on_commit_callbacks() as callbacks:
        (row,) = services.notify_staff(role="support", event="refund_escalated", refund=refund, context={"reason": "dispute"})
    assert callbacks == []
    row.refresh_from_db()
    assert row.status == S.SENT
    assert row.subject == f"{refund.number} needs a review"
    assert "needs a review: dispute." in row.body


def test_the_inbox_of_a_role_is_shared_but_read_state_is_per_user(support_user, support_user2, finance_user):
    refund = submitted()
    (row,) = services.notify_staff(role="support", event="refund_escalated", refund=refund, context={"reason": "x"})
    assert selectors.unread_count_for(support_user) == 1
    assert selectors.unread_count_for(support_user2) == 1
    assert selectors.unread_count_for(finance_user) == 0

    services.inbox_mark_read(user=support_user, notification_ids=[row.pk])

    assert selectors.unread_count_for(support_user) == 0
    assert selectors.unread_count_for(support_user2) == 1


def test_a_user_can_not_mark_another_roles_message_read(finance_user):
    refund = submitted()
    (row,) = services.notify_staff(role="support", event="refund_escalated", refund=refund, context={"reason": "x"})
    assert services.inbox_mark_read(user=finance_user, notification_ids=[row.pk]) == 0
    assert not StaffInboxRead.objects.exists()


def test_unread_count_is_one_query(support_user, django_assert_num_queries):
    refund = submitted()
    for _ in range(3):
        services.notify_staff(role="support", event="refund_escalated", refund=refund, context={"reason": "x"})
    with django_assert_num_queries(1):
        assert selectors.unread_count_for(support_user) == 3


def test_an_administrator_sees_every_roles_messages(admin_user):
    refund = submitted()
    services.notify_staff(role="support", event="refund_escalated", refund=refund, context={"reason": "x"})
    services.notify_staff(role="risk", event="watchlist_hit", refund=refund)
    assert selectors.unread_count_for(admin_user) == 2


def test_a_message_for_one_user_is_not_shown_to_the_rest_of_the_role(support_user, support_user2):
    refund = submitted()
    services.notify_staff(role="support", event="refund_escalated", refund=refund, context={"reason": "x"}, user=support_user)
    assert selectors.unread_count_for(support_user) == 1
    assert selectors.unread_count_for(support_user2) == 0


def test_resend_gives_dead_and_failed_messages_new_attempts_and_leaves_sent_ones_alone(
    django_capture_on_commit_callbacks, memory_sms
):
    refund = submitted(customer=CustomerFactory(email=""))
    dead = Notification.objects.create(
        channel="sms", event="refund_approved", recipient="+8613800138001", refund=refund, body="hi",
        status=S.DEAD, attempts=6, last_error="provider answered 503",
    )  # fmt: skip
    sent = Notification.objects.create(
        channel="sms", event="refund_approved", recipient="+8613800138002", refund=refund, body="hi", status=S.SENT
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert services.notification_resend(notification_ids=[dead.pk, sent.pk]) == 1
    dead.refresh_from_db()
    sent.refresh_from_db()
    assert (dead.status, dead.attempts) == (S.SENT, 1)
    assert sent.status == S.SENT
    assert [m["to"] for m in memory_sms] == ["+8613800138001"]


def test_every_event_the_product_sends_has_a_template_in_both_languages():
    customer_events = {
        "request_received", "refund_rejected", "refund_under_review", "alternative_offered", "refund_approved",
        "return_instructions", "more_information_needed", "alternative_accepted", "refund_withdrawn",
        "parcel_received", "return_expired", "refund_paid",
    }  # fmt: skip
    staff_events = {
        "refund_escalated", "ready_for_payout", "payout_failed", "watchlist_hit", "parcel_received",
        "sla_breached", "sla_escalated",
    }  # fmt: skip
    have = set(MessageTemplate.objects.values_list("event", "channel", "language"))
    for language in ("en", "zh-hans"):
        for event in customer_events:
            assert (event, "sms", language) in have
        for event in staff_events:
            assert (event, "staff", language) in have


def test_the_customer_hears_about_the_decision_with_the_reason(django_capture_on_commit_callbacks, memory_sms):
    customer = CustomerFactory(language="en", email="")
    with django_capture_on_commit_callbacks(execute=True):
        refund = evaluated(customer=customer, reason="not_as_described")
    assert refund.state == RefundRequest.State.UNDER_REVIEW
    bodies = [m["body"] for m in memory_sms]
    assert any("is being reviewed by our team" in b for b in bodies)
