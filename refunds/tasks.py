"""django-q2 tasks: each takes ids, makes one service call, and is safe to run twice."""

import logging
from datetime import date, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from config import sweeps
from config.actors import SYSTEM, Actor
from notifications.services import alert_parked
from refunds import exports, reconciliation, selectors, services
from refunds.errors import RefundNotAllowed
from refunds.models import Payout, RefundRequest, sources_of

logger = logging.getLogger(__name__)


def refund_evaluate_task(refund_id: int) -> str:
    return services.refund_evaluate(refund_id=refund_id).state


def payout_execute_task(payout_id: int) -> str | None:
    payout = services.payout_execute(payout_id=payout_id)
    return payout.state if payout else None


def payout_execute_batch_task(batch_id: int) -> int:
    """Execute every approved payout of a bulk approval; each is claimed on its own."""
    done = 0
    claimable = Payout.objects.filter(batch_id=batch_id, state__in=sources_of(Payout.start))
    for payout_id in claimable.values_list("pk", flat=True):
        if services.payout_execute(payout_id=payout_id):
            done += 1
    return done


def payout_send_task(payout_id: int) -> str:
    return services.payout_send(payout_id=payout_id).state


def payout_check_status_task(payout_id: int) -> str:
    return services.payout_check_status(payout_id=payout_id).state


def sweep_submitted() -> int:
    """Evaluate requests a dead or lost task left in `submitted` (for longer than
    SUBMITTED_STALE_SECONDS, a minute), oldest first, each on its own: one that keeps failing
    is parked, not retried ahead of the rest."""
    cutoff = timezone.now() - timedelta(seconds=settings.REFUND_DESK["SUBMITTED_STALE_SECONDS"])
    name = "refunds.refundrequest:evaluate"
    rows = sweeps.without_parked(
        name, RefundRequest.objects.filter(state=RefundRequest.State.SUBMITTED, created_at__lt=cutoff)
    ).order_by("created_at", "pk")
    report = sweeps.sweep(name, rows.values_list("pk", flat=True)[:500], lambda pk: services.refund_evaluate(refund_id=pk))
    alert_parked(report)
    return report.done


def sweep_payouts() -> int:
    """Re-drive payouts a crash left behind, and ask the gateway about unknown outcomes.

    Approved but never claimed: executed. Stuck in `processing` (a worker died mid-call):
    sent again with its own idempotency key, so the gateway answers the first result and
    nothing is paid twice. Outcome unknown and due: the gateway is asked (a back-off).
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.REFUND_DESK["PAYOUT_STALE_SECONDS"])
    P = Payout.State
    passes = [
        (
            "refunds.payout:execute",
            Payout.objects.filter(state__in=sources_of(Payout.start), approved_at__lt=stale).order_by("approved_at", "pk"),
            lambda pk: services.payout_execute(payout_id=pk),
        ),
        (
            "refunds.payout:send",
            Payout.objects.filter(state=P.PROCESSING, processing_started_at__lt=stale).order_by("processing_started_at", "pk"),
            lambda pk: services.payout_send(payout_id=pk),
        ),
        (
            "refunds.payout:ask_gateway",
            Payout.objects.filter(state=P.OUTCOME_UNKNOWN, next_status_check_at__lte=now).order_by("next_status_check_at", "pk"),
            lambda pk: services.payout_check_status(payout_id=pk),
        ),
    ]
    done = 0
    for name, rows, handle in passes:
        report = sweeps.sweep(name, sweeps.without_parked(name, rows).values_list("pk", flat=True)[:500], handle)
        alert_parked(report)
        done += report.done
    return done


def expire_returns() -> int:
    """awaiting_return past the return deadline → cancelled (the customer is told)."""
    name = "refunds.refundrequest:expire"
    ids = sweeps.without_parked(name, selectors.overdue_returns()).values_list("pk", flat=True)[:500]
    report = sweeps.sweep(name, ids, lambda pk: _unless_moved_on(services.refund_expire, pk))
    alert_parked(report)
    return report.done


def time_out_awaiting_customer() -> int:
    """awaiting_customer with no answer past the timeout → back to review."""
    before = timezone.now() - timedelta(hours=settings.REFUND_DESK["AWAITING_CUSTOMER_TIMEOUT_HOURS"])
    name = "refunds.refundrequest:resume"
    ids = sweeps.without_parked(name, selectors.timed_out_awaiting_customer(before=before)).values_list("pk", flat=True)[:500]
    report = sweeps.sweep(name, ids, lambda pk: _unless_moved_on(services.refund_resume, pk))
    alert_parked(report)
    return report.done


def sla_sweep() -> int:
    return services.sla_sweep()


def _unless_moved_on(service, refund_id: int) -> None:
    """A timer's service; a request that moved on meanwhile (the parcel was scanned, the
    customer answered) is refused by the service, which is not a failure of the timer."""
    try:
        service(refund_id=refund_id, actor=SYSTEM)
    except RefundNotAllowed as exc:
        logger.info("timer left %s alone: %s", refund_id, exc)


def export_write_task(export_id: int) -> str:
    return exports.export_write(export_id=export_id)


def sweep_exports() -> int:
    """Queue again the exports a lost task left `queued`, oldest first."""
    name = "refunds.export:queue"
    rows = sweeps.without_parked(name, exports.lost_exports()).order_by("created_at", "pk")
    report = sweeps.sweep(name, rows.values_list("pk", flat=True)[:100], lambda pk: exports.export_queue(export_id=pk))
    alert_parked(report)
    return report.done


def exports_clean_task() -> int:
    return exports.exports_clean()


def reconcile_yesterday() -> int:
    return reconciliation.reconcile_yesterday()


def reconciliation_run_task(day: str, user_id: int | None = None) -> str:
    """Finance's "check against the gateway" button: the run, by the person who asked."""
    actor = Actor.for_user(get_user_model().objects.get(pk=user_id)) if user_id else SYSTEM
    return reconciliation.reconciliation_run(day=date.fromisoformat(day), actor=actor).state
