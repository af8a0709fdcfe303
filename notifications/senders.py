"""Claim one outbox row, send it once through its channel's backend, record the result.

Every attempt begins with a conditional update (`pending`/due `failed` → `sending`): two
workers, or a worker and the sweeper, never both hold a row. The provider call runs
outside any transaction. A worker that dies after the provider accepted a message leaves
the row in `sending`; the sweeper sends it again with the same idempotency key, which the
provider uses to answer the first result instead of sending a second SMS.
"""

import logging
import smtplib
import time
from datetime import timedelta

import phonenumbers
from django.conf import settings
from django.core.mail import EmailMessage
from django.db.models import F, Q
from django.utils import timezone

from config.pii import mask_phone, redact
from notifications.backends import SendError, get_sms_backend
from notifications.models import Notification

logger = logging.getLogger(__name__)
Status = Notification.Status
INLINE_BUDGET_SECONDS = 20


def send_one(*, notification_id: int) -> bool:
    """Send a due row. A failure with a short back-off is retried here after the back-off;
    a longer one is left to the sweeper. Returns True if the row ended `sent` by this call."""
    started = time.monotonic()
    while True:
        row = _claim(notification_id)
        if row is None:
            return False
        status = _attempt(row)
        if status != Status.FAILED:
            return status == Status.SENT
        wait = (row.next_attempt_at - timezone.now()).total_seconds()
        # Stay well inside the q2 task timeout: a worker killed for running long would leave
        # the row in `sending` until the sweeper's stuck limit.
        if wait > settings.NOTIFICATIONS["RETRY_INLINE_MAX_SECONDS"] or time.monotonic() - started > INLINE_BUDGET_SECONDS:
            return False
        time.sleep(max(wait, 0))


def send_stuck(*, notification_id: int, claimed_before) -> bool:
    """Take over a row a dead worker left in `sending` and send it again (same idempotency key)."""
    now = timezone.now()
    taken = Notification.objects.filter(pk=notification_id, status=Status.SENDING, claimed_at__lt=claimed_before).update(
        claimed_at=now, attempts=F("attempts") + 1
    )
    if not taken:
        return False
    row = Notification.objects.select_related("refund__customer").get(pk=notification_id)
    return _attempt(row) == Status.SENT


def _claim(notification_id: int) -> Notification | None:
    now = timezone.now()
    claimed = (
        Notification.objects.filter(pk=notification_id)
        .filter(Q(status=Status.PENDING) | Q(status=Status.FAILED, next_attempt_at__lte=now))
        .update(status=Status.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    )
    if not claimed:
        return None
    return Notification.objects.select_related("refund__customer").get(pk=notification_id)


def _attempt(row: Notification) -> str:
    try:
        if row.channel == Notification.Channel.SMS:
            provider_id = _send_sms(row)
        elif row.channel == Notification.Channel.EMAIL:
            provider_id = _send_email(row)
        else:
            provider_id = ""  # the staff inbox is our own table: written is delivered
    except SendError as exc:
        return _record_failure(row, str(exc), permanent=exc.permanent)
    except Exception as exc:  # a bug in a backend must not leave the row in `sending` forever
        logger.exception("sending %s failed unexpectedly", row)
        return _record_failure(row, f"{type(exc).__name__}: {exc}", permanent=False)
    Notification.objects.filter(pk=row.pk, status=Status.SENDING).update(
        status=Status.SENT, sent_at=timezone.now(), provider_message_id=provider_id[:100], last_error=""
    )
    return Status.SENT


def e164(number: str) -> str:
    """The number in E.164, or SendError(permanent) if it is not a valid phone number."""
    try:
        parsed = phonenumbers.parse(number, settings.NOTIFICATIONS["PHONE_REGION"])
    except phonenumbers.NumberParseException as exc:
        raise SendError(f"invalid phone number {mask_phone(number)!r}: {exc}", permanent=True) from None
    if not phonenumbers.is_valid_number(parsed):
        raise SendError(f"invalid phone number {mask_phone(number)!r}: not a valid E.164 number", permanent=True)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _send_sms(row: Notification) -> str:
    customer = row.refund.customer if row.refund_id else None
    # Asked before the row was written too; asked again because a retry can come much later.
    if customer is not None and customer.sms_opt_out:
        raise SendError("the customer opted out of SMS", permanent=True)
    return get_sms_backend().send(to=e164(row.recipient), body=row.body, reference=row.idempotency_key)


def _send_email(row: Notification) -> str:
    message_id = f"<{row.idempotency_key}@refund-desk>"
    email = EmailMessage(
        subject=row.subject or f"[Refund Desk] {row.event}",
        body=row.body,
        to=[row.recipient],
        # A stable Message-ID lets mail servers drop a copy re-sent after a crash.
        headers={"Message-ID": message_id},
    )
    try:
        email.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused as exc:
        raise SendError(f"recipient refused: {exc}", permanent=True) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise SendError(f"mail server: {exc}") from None
    return message_id


def backoff(attempts: int) -> timedelta:
    cfg = settings.NOTIFICATIONS
    return timedelta(seconds=min(cfg["BACKOFF_SECONDS"] * 2 ** max(attempts - 1, 0), cfg["BACKOFF_MAX_SECONDS"]))


def _record_failure(row: Notification, error: str, *, permanent: bool) -> str:
    dead = permanent or row.attempts >= settings.NOTIFICATIONS["MAX_ATTEMPTS"]
    status = Status.DEAD if dead else Status.FAILED
    row.next_attempt_at = timezone.now() + backoff(row.attempts)
    # Only the holder of the claim records: a row someone already marked sent stays sent.
    # A provider's or mail server's answer often names the recipient: stored and logged masked.
    error = redact(error)
    Notification.objects.filter(pk=row.pk, status=Status.SENDING).update(
        status=status, last_error=error[:2000], next_attempt_at=row.next_attempt_at
    )
    if dead:
        logger.warning("notification %s is dead after %s attempts: %s", row.pk, row.attempts, error)
    return status
