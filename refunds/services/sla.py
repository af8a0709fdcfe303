"""The SLA watch: a request waiting in a state past its limit alerts the responsible role, once
per stay in the state and level (alert, then escalation). The limits are the merchant's
(`notifications.SlaLimit`, in the admin); the breach rows keep the "once"."""

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications.models import SlaBreach, SlaLimit
from notifications.services import notify_staff
from refunds.selectors import sla_breach_candidates


def sla_sweep(*, now=None) -> int:
    """Alert the responsible role about every request waiting past its state's limit, once
    per stay in the state and level (alert, then escalation). Returns the alerts written."""
    now = now or timezone.now()
    written = 0
    for limit in SlaLimit.objects.filter(active=True).order_by("pk"):
        levels = [
            (SlaBreach.Level.ALERT, limit.alert_after_minutes, limit.role),
            (SlaBreach.Level.ESCALATION, limit.escalate_after_minutes, limit.escalate_to or limit.role),
        ]
        for level, minutes, role in levels:
            for refund in sla_breach_candidates(state=limit.state, level=level, cutoff=now - timedelta(minutes=minutes)):
                written += _record_breach(refund=refund, limit=limit, level=level, role=role, minutes=minutes, now=now)
    return written


def _record_breach(*, refund, limit: SlaLimit, level: str, role: str, minutes: int, now) -> int:
    waited = now - refund.state_changed_at
    with transaction.atomic():
        try:
            # The unique breach row is the "once": two sweeps racing write it once, and the
            # loser's alert is rolled back with its failed insert.
            with transaction.atomic():
                SlaBreach.objects.create(
                    refund=refund, state=limit.state, state_changed_at=refund.state_changed_at, level=level, role=role
                )
        except IntegrityError:
            return 0
        notify_staff(
            role=role,
            event="sla_breached" if level == SlaBreach.Level.ALERT else "sla_escalated",
            refund=refund,
            context={
                "hours": f"{waited.total_seconds() / 3600:.1f}",
                "limit_hours": f"{minutes / 60:.1f}",
                "state": refund.get_state_display(),
            },
        )
    return 1
