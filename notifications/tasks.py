"""django-q2 tasks of the notifications app: take ids, call one service each, safe to run twice.

The sweepers and timers run on schedules created by the data migration
`0004_seed_templates_limits_schedules`.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from config.q2 import enqueue_many_on_commit
from notifications import selectors, senders, services

logger = logging.getLogger(__name__)


def notification_send(notification_id: int) -> bool:
    return senders.send_one(notification_id=notification_id)


def notification_send_stuck(notification_id: int, claimed_before: str) -> bool:
    from django.utils.dateparse import parse_datetime

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


def expire_returns() -> int:
    """awaiting_return past the return deadline → cancelled (the customer is told)."""
    from orders.actors import SYSTEM
    from refunds.errors import RefundError
    from refunds.services import refund_expire

    done = 0
    for refund_id in selectors.overdue_returns():
        try:
            refund_expire(refund_id=refund_id, actor=SYSTEM)
            done += 1
        except RefundError as exc:  # the parcel was scanned in the meantime
            logger.info("not expiring %s: %s", refund_id, exc)
    return done


def time_out_awaiting_customer() -> int:
    """awaiting_customer with no answer past the timeout → back to review."""
    from orders.actors import SYSTEM
    from refunds.errors import RefundError
    from refunds.services import refund_resume

    before = timezone.now() - timedelta(hours=settings.NOTIFICATIONS["AWAITING_CUSTOMER_TIMEOUT_HOURS"])
    done = 0
    for refund_id in selectors.timed_out_awaiting_customer(before=before):
        try:
            refund_resume(refund_id=refund_id, actor=SYSTEM)
            done += 1
        except RefundError as exc:  # the customer answered in the meantime
            logger.info("not resuming %s: %s", refund_id, exc)
    return done


def sla_sweep() -> int:
    return services.sla_sweep()
