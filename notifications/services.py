"""Writing to the outbox. Sending happens in `notifications.tasks`, after commit."""

from django.db import transaction

from config.q2 import enqueue_on_commit
from notifications.models import Notification


def notify_customer(*, refund, event: str, context: dict | None = None) -> list[Notification]:
    """Queue the customer's messages about `event` on `refund` (SMS unless opted out)."""
    customer = refund.customer
    rows = []
    if customer.phone and not customer.sms_opt_out:
        rows.append(
            Notification(
                channel=Notification.Channel.SMS,
                event=event,
                language=customer.language,
                recipient=customer.phone,
                refund=refund,
                context=context or {},
            )
        )
    return _queue(rows)


def notify_staff(*, role: str, event: str, refund=None, context: dict | None = None) -> list[Notification]:
    """Queue a staff-inbox message for everyone in `role`."""
    rows = [
        Notification(
            channel=Notification.Channel.STAFF,
            event=event,
            language="en",
            recipient=role,
            refund=refund,
            context=context or {},
        )
    ]
    return _queue(rows)


def _queue(rows: list[Notification]) -> list[Notification]:
    if not rows:
        return rows
    with transaction.atomic():
        for row in rows:
            row.save()
            enqueue_on_commit("notifications.tasks.notification_send", row.pk)
    return rows
