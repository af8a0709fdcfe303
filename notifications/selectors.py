"""Reads of the notifications app."""

from datetime import timedelta

from django.contrib.auth.models import Group
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from notifications.models import Notification, StaffInboxRead


def staff_inbox_for(user) -> QuerySet[Notification]:
    """Staff messages this user may see: those for the roles (groups) they are in and those
    addressed to them; an administrator sees every role's. Annotated with `is_read`."""
    rows = Notification.objects.filter(channel=Notification.Channel.STAFF)
    if not user.is_superuser:
        roles = Group.objects.filter(user=user).values("name")
        rows = rows.filter(Q(recipient_user=user) | Q(recipient_user__isnull=True, recipient__in=roles))
    return rows.annotate(is_read=Exists(StaffInboxRead.objects.filter(notification=OuterRef("pk"), user=user)))


def unread_count_for(user) -> int:
    """How many inbox messages this user has not read yet (one query)."""
    if not getattr(user, "is_authenticated", False):
        return 0
    return staff_inbox_for(user).filter(is_read=False).count()


def outbox_problems() -> QuerySet[Notification]:
    """Messages that need a person: dead, or failing and waiting for a retry."""
    return Notification.objects.filter(status__in=[Notification.Status.DEAD, Notification.Status.FAILED]).select_related("refund")


def due_for_sending(*, now=None, pending_grace_seconds: float = 10, limit: int = 500) -> list[int]:
    """Rows whose (next) attempt is due. Fresh `pending` rows get a grace period: their own
    task, enqueued at commit, is normally about to send them."""
    now = now or timezone.now()
    grace = now - timedelta(seconds=pending_grace_seconds)
    return list(
        Notification.objects.filter(
            Q(status=Notification.Status.PENDING, next_attempt_at__lte=grace)
            | Q(status=Notification.Status.FAILED, next_attempt_at__lte=now)
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def stuck_in_sending(*, claimed_before, limit: int = 500) -> list[int]:
    return list(
        Notification.objects.filter(status=Notification.Status.SENDING, claimed_at__lt=claimed_before)
        .order_by("claimed_at")
        .values_list("pk", flat=True)[:limit]
    )
