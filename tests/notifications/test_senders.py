from datetime import timedelta

import pytest
from django.utils import timezone

from config.pii import mask_phone
from notifications import senders, tasks
from notifications.backends import SendError
from notifications.models import Notification
from tests.factories import CustomerFactory, OrderFactory, RefundRequestFactory

pytestmark = pytest.mark.django_db
S = Notification.Status


@pytest.fixture
def refund():
    customer = CustomerFactory(email="")
    return RefundRequestFactory(order=OrderFactory(customer=customer, channel=customer.channel))


def sms_row(refund, *, to="+8613800138000", **kwargs):
    return Notification.objects.create(
        channel="sms", event="refund_approved", recipient=to, refund=refund, body="approved", **kwargs
    )


class FlakyBackend:
    """Fails the first `failures` sends (transient), then accepts."""

    failures = 0
    calls: list[str] = []

    def send(self, *, to, body, reference):
        FlakyBackend.calls.append(reference)
        if len(FlakyBackend.calls) <= FlakyBackend.failures:
            raise SendError("provider answered 503: busy")
        return "SM-ok"


@pytest.fixture
def flaky(settings):
    FlakyBackend.calls = []
    settings.NOTIFICATIONS = {
        **settings.NOTIFICATIONS,
        "SMS_BACKEND": "tests.notifications.test_senders.FlakyBackend",
        "BACKOFF_SECONDS": 60,
        "MAX_ATTEMPTS": 3,
    }
    return FlakyBackend


def test_a_row_is_sent_once_even_if_its_task_runs_twice(refund, memory_sms):
    row = sms_row(refund)
    assert senders.send_one(notification_id=row.pk) is True
    assert senders.send_one(notification_id=row.pk) is False
    row.refresh_from_db()
    assert (row.status, row.attempts, row.provider_message_id) == (S.SENT, 1, f"memory-{row.idempotency_key}")
    assert len(memory_sms) == 1


def test_a_row_claimed_by_another_worker_is_not_sent(refund, memory_sms):
    row = sms_row(refund, status=S.SENDING, claimed_at=timezone.now())
    assert senders.send_one(notification_id=row.pk) is False
    assert memory_sms == []


def test_a_transient_failure_waits_with_exponential_back_off(refund, flaky):
    flaky.failures = 2
    row = sms_row(refund)
    before = timezone.now()
    assert senders.send_one(notification_id=row.pk) is False  # 60 s is longer than the inline wait
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == (S.FAILED, 1, "provider answered 503: busy")
    assert before + timedelta(seconds=59) < row.next_attempt_at < before + timedelta(seconds=62)

    # not due yet: nobody may send it
    assert senders.send_one(notification_id=row.pk) is False
    assert len(flaky.calls) == 1

    Notification.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
    before = timezone.now()
    assert senders.send_one(notification_id=row.pk) is False
    row.refresh_from_db()
    assert (row.status, row.attempts) == (S.FAILED, 2)
    assert before + timedelta(seconds=119) < row.next_attempt_at < before + timedelta(seconds=122)  # doubled

    Notification.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
    assert senders.send_one(notification_id=row.pk) is True
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == (S.SENT, 3, "")


def test_a_short_back_off_is_retried_by_the_same_worker(refund, flaky, settings):
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, "BACKOFF_SECONDS": 0.01, "MAX_ATTEMPTS": 5}
    flaky.failures = 2
    row = sms_row(refund)
    assert senders.send_one(notification_id=row.pk) is True
    row.refresh_from_db()
    assert (row.status, row.attempts) == (S.SENT, 3)
    assert flaky.calls == [row.idempotency_key] * 3  # the same key every time


def test_the_last_failed_attempt_makes_the_row_dead(refund, flaky, settings):
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, "BACKOFF_SECONDS": 0.01, "MAX_ATTEMPTS": 3}
    flaky.failures = 99
    row = sms_row(refund)
    assert senders.send_one(notification_id=row.pk) is False
    row.refresh_from_db()
    assert (row.status, row.attempts) == (S.DEAD, 3)
    assert len(flaky.calls) == 3
    # the sweeper leaves dead rows to a person
    Notification.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now() - timedelta(hours=1))
    assert tasks.sweep_outbox() == 0


@pytest.mark.parametrize("number", ["12345", "+86 138 0013", "not a phone", "+999123456789"])
def test_an_invalid_phone_number_is_dead_at_once_with_a_clear_error(refund, memory_sms, number):
    row = sms_row(refund, to=number)
    assert senders.send_one(notification_id=row.pk) is False
    row.refresh_from_db()
    assert row.status == S.DEAD
    assert row.attempts == 1
    # the number as the masked roles would see it, never whole (config.pii)
    assert row.last_error.startswith(f"invalid phone number {mask_phone(number)!r}")
    assert memory_sms == []


def test_a_national_number_is_sent_in_e164(refund, memory_sms):
    row = sms_row(refund, to="138 0013 8000")
    assert senders.send_one(notification_id=row.pk) is True
    assert memory_sms[0]["to"] == "+8613800138000"


def test_a_customer_who_opted_out_after_the_row_was_written_gets_nothing(refund, memory_sms):
    row = sms_row(refund)
    refund.customer.sms_opt_out = True
    refund.customer.save()
    assert senders.send_one(notification_id=row.pk) is False
    row.refresh_from_db()
    assert (row.status, row.last_error) == (S.DEAD, "the customer opted out of SMS")
    assert memory_sms == []


def test_the_sweeper_sends_due_rows_a_lost_task_left_behind(refund, memory_sms, django_capture_on_commit_callbacks):
    old = sms_row(refund, next_attempt_at=timezone.now() - timedelta(minutes=5))
    fresh = sms_row(refund, to="+8613800138001")  # its own task is about to run
    failed_due = sms_row(refund, to="+8613800138002", status=S.FAILED, attempts=1, next_attempt_at=timezone.now())
    failed_later = sms_row(
        refund, to="+8613800138003", status=S.FAILED, attempts=1, next_attempt_at=timezone.now() + timedelta(minutes=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.sweep_outbox() == 2
    statuses = dict(Notification.objects.values_list("pk", "status"))
    assert statuses == {old.pk: S.SENT, fresh.pk: S.PENDING, failed_due.pk: S.SENT, failed_later.pk: S.FAILED}
    assert sorted(m["to"] for m in memory_sms) == ["+8613800138000", "+8613800138002"]


def test_the_sweeper_resends_a_row_stuck_in_sending_with_the_same_key(
    refund, memory_sms, settings, django_capture_on_commit_callbacks
):
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, "STUCK_SENDING_SECONDS": 60}
    stuck = sms_row(refund, status=S.SENDING, attempts=1, claimed_at=timezone.now() - timedelta(minutes=2))
    busy = sms_row(refund, to="+8613800138001", status=S.SENDING, attempts=1, claimed_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.sweep_outbox() == 1
    stuck.refresh_from_db()
    busy.refresh_from_db()
    assert (stuck.status, stuck.attempts) == (S.SENT, 2)
    assert busy.status == S.SENDING
    assert memory_sms == [{"to": "+8613800138000", "body": "approved", "reference": stuck.idempotency_key}]


def test_a_late_answer_from_a_superseded_worker_does_not_undo_sent(refund, memory_sms):
    row = sms_row(refund, status=S.SENT, attempts=2)
    row.attempts = 2
    assert senders._record_failure(row, "timed out", permanent=False) == S.FAILED
    row.refresh_from_db()
    assert row.status == S.SENT
