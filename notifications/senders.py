"""Claim and send one outbox row. Backends and retries are filled in by the notifications work."""

from django.db.models import F
from django.utils import timezone

from notifications.models import Notification


def send_one(*, notification_id: int) -> bool:
    """Claim the row with a conditional update so two workers never send it twice."""
    claimed = Notification.objects.filter(id=notification_id, status=Notification.Status.PENDING).update(
        status=Notification.Status.SENDING, claimed_at=timezone.now(), attempts=F("attempts") + 1
    )
    if not claimed:
        return False
    # Until real backends exist, staff-inbox rows are delivered by being stored.
    Notification.objects.filter(id=notification_id).update(status=Notification.Status.SENT, sent_at=timezone.now())
    return True
