"""django-q2 tasks of the notifications app: take ids, call one service each, safe to run twice.

The outbox sweeper runs on a schedule created by the data migration `0003_defaults`; the SLA
watch and the refund lifecycle's timers are `refunds.tasks` (scheduled by `refunds`' own).
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from config.q2 import enqueue_many_on_commit
from notifications import selectors, senders

logger = logging.getLogger(__name__)


def notification_send(notification_id: int) -> bool:
    return senders.send_one(notification_id=notification_id)


def notification_send_stuck(notification_id: int, claimed_before: str) -> bool:
    return senders.send_stuck(notification_id=notification_id, claimed_before=parse_datetime(claimed_before))


def sweep_outbox() -> int:
    """Re-drive what a crash or a long back-off left behind: due rows, and rows stuck in
    `sending` longer than any send can take (their worker died)."""
    now = timezone.now()
    due = selectors.due_for_sending(now=now)
    enqueue_many_on_commit("notifications.tasks.notification_send", [(pk,) for pk in due])
    cutoff = now - timedelta(seconds=settings.NOTIFICATIONS["STUCK_SENDING_SECONDS"])
    stuck = selectors.stuck_in_sending(claimed_before=cutoff)
    enqueue_many_on_commit("notifications.tasks.notification_send_stuck", [(pk, cutoff.isoformat()) for pk in stuck])
    return len(due) + len(stuck)
