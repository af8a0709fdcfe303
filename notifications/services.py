"""Writes of the notifications app: the outbox, the staff inbox, resends and SLA alerts.

Sending happens in `notifications.senders`, called by tasks after commit.
"""

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.q2 import enqueue_many_on_commit
from notifications.models import Notification, StaffInboxRead
from notifications.rendering import render
from notifications.selectors import staff_inbox_for

logger = logging.getLogger(__name__)

SEND_TASK = "notifications.tasks.notification_send"


def notify_customer(*, refund, event: str, context: dict | None = None) -> list[Notification]:
    """Queue the customer's messages about `event` on `refund`: SMS (unless opted out) and
    e-mail, each on the channels `NOTIFICATIONS["CUSTOMER_CHANNELS"]` allows."""
    customer = refund.customer
    channels = settings.NOTIFICATIONS["CUSTOMER_CHANNELS"]
    targets = []
    if "sms" in channels and customer.phone and not customer.sms_opt_out:
        targets.append((Notification.Channel.SMS, customer.phone))
    if "email" in channels and customer.email:
        targets.append((Notification.Channel.EMAIL, customer.email))
    rows = []
    for channel, recipient in targets:
        subject, body = render(event=event, channel=channel, language=customer.language, refund=refund, context=context)
        rows.append(
            Notification(
                channel=channel,
                event=event,
                language=customer.language,
                recipient=recipient,
                refund=refund,
                context=context or {},
                subject=subject,
                body=body,
            )
        )
    return _queue(rows)


def notify_staff(*, role: str, event: str, refund=None, context: dict | None = None, user=None) -> list[Notification]:
    """Put a message in the inbox of everyone in `role` (or of one `user`).

    The inbox is our own table, so the row is delivered by being written, in the caller's
    transaction: staff see it the moment the change commits, and never for a rollback.
    """
    language = settings.NOTIFICATIONS["STAFF_LANGUAGE"]
    subject, body = render(event=event, channel=Notification.Channel.STAFF, language=language, refund=refund, context=context)
    now = timezone.now()
    row = Notification.objects.create(
        channel=Notification.Channel.STAFF,
        event=event,
        language=language,
        recipient=role,
        recipient_user=user,
        refund=refund,
        context=context or {},
        subject=subject,
        body=body,
        status=Notification.Status.SENT,
        sent_at=now,
        next_attempt_at=now,
    )
    return [row]


def alert_parked(report) -> None:
    """Tell the administrators about the rows a sweeper parked in this run (`config.sweeps`)."""
    for object_id, error in report.parked:
        notify_staff(
            role="admin",
            event="work_parked",
            context={"sweeper": report.sweeper, "row": str(object_id), "error": error.splitlines()[-1][:300]},
        )


def _queue(rows: list[Notification]) -> list[Notification]:
    if not rows:
        return rows
    with transaction.atomic():
        for row in rows:
            row.save()
        _send_after_commit([row.pk for row in rows])
    return rows


def _send_after_commit(ids: list[int]) -> None:
    """Queue a send task per row once the transaction commits, batched per transaction.

    Every call registers its own on-commit flush, so a row that commits always has one; the
    first flush to run takes every id collected on this connection and queues them in one
    broker transaction, the later ones find nothing left. Ids of rows a savepoint rolled
    back may ride along: their task finds no row and does nothing.
    """
    conn = transaction.get_connection()
    pending = conn.__dict__.setdefault("_notifications_pending", [])
    pending.extend(ids)

    def flush():
        batch = list(pending)
        pending.clear()
        if batch:
            enqueue_many_on_commit(SEND_TASK, [(pk,) for pk in batch])

    transaction.on_commit(flush)


def notification_resend(*, notification_ids: list[int]) -> int:
    """Give dead or failed messages a fresh set of attempts (an admin's resend). Sent ones are
    left alone: resending those would reach the customer twice."""
    with transaction.atomic():
        ids = list(
            Notification.objects.select_for_update()
            .filter(
                pk__in=notification_ids,
                status__in=[Notification.Status.DEAD, Notification.Status.FAILED],
            )
            .exclude(channel=Notification.Channel.STAFF)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        Notification.objects.filter(pk__in=ids).update(
            status=Notification.Status.PENDING, attempts=0, next_attempt_at=timezone.now(), claimed_at=None
        )
        enqueue_many_on_commit(SEND_TASK, [(pk,) for pk in ids])
    return len(ids)


def inbox_mark_read(*, user, notification_ids: list[int]) -> int:
    """Mark inbox messages read for this user only; the rest of the role still sees them unread."""
    visible = list(staff_inbox_for(user).filter(pk__in=notification_ids).values_list("pk", flat=True))
    StaffInboxRead.objects.bulk_create([StaffInboxRead(notification_id=pk, user=user) for pk in visible], ignore_conflicts=True)
    return len(visible)
