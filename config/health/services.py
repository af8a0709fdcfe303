"""The staff alert for stalled background work: raised once per stall, closed once.

Called by `check_workers` and by `/health/`, which run outside the cluster: an alert that
needed a q2 task would be stuck in the queue it is about.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone

from config.health.selectors import Liveness
from config.models import WorkerStall
from notifications.services import notify_staff

# Not a group: a staff message for a role no group has reaches the administrators only
# (superusers see every role's inbox).
ADMIN_ROLE = "admin"


def worker_stall_sync(*, liveness: Liveness) -> str:
    """Open a stall and alert the administrators when `liveness` is stalled; close it and
    tell them when work moves again. Returns "opened", "resolved" or "" (nothing changed).
    The common case, nothing changed, is one read."""
    open_stalls = WorkerStall.objects.filter(queue=liveness.queue, resolved_at__isnull=True)
    if liveness.stalled == open_stalls.exists():
        return ""
    if liveness.stalled:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    WorkerStall.objects.create(
                        queue=liveness.queue,
                        started_at=liveness.checked_at,
                        queued=liveness.waiting,
                        oldest_queued_at=liveness.oldest_queued_at,
                        last_finished_at=liveness.last_finished_at,
                    )
            except IntegrityError:
                return ""  # another check opened it a moment ago, and alerted
            notify_staff(role=ADMIN_ROLE, event="workers_stalled", context=_stalled_context(liveness))
        return "opened"
    now = timezone.now()
    with transaction.atomic():
        stall = open_stalls.select_for_update().first()
        # A racing check may have closed it while this one waited for the row.
        if stall is None or stall.resolved_at is not None:
            return ""
        stall.resolved_at = now
        stall.save(update_fields=["resolved_at"])
        notify_staff(
            role=ADMIN_ROLE,
            event="workers_recovered",
            context={"queue": liveness.queue, "stalled_minutes": _minutes((now - stall.started_at).total_seconds())},
        )
    return "resolved"


def _stalled_context(liveness: Liveness) -> dict:
    return {
        "queue": liveness.queue,
        "queued": str(liveness.waiting),
        "oldest_minutes": _minutes(liveness.oldest_queued_seconds),
        "idle_minutes": _minutes(liveness.last_finished_seconds),
    }


def _minutes(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 60:.0f}"
