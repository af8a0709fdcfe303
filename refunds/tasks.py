"""django-q2 tasks: each takes ids, makes one service call, and is safe to run twice."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from refunds import exports, services
from refunds.models import Payout, RefundRequest


def refund_evaluate_task(refund_id: int) -> str:
    return services.refund_evaluate(refund_id=refund_id).state


def refund_evaluate_submitted_task(channel_id: int, idempotency_key: str) -> str:
    """The intake's task on the ORM broker: the package is signed before the request has an
    id, so it names the request by its channel and Idempotency-Key (unique together)."""
    refund_id = RefundRequest.objects.values_list("pk", flat=True).get(channel_id=channel_id, idempotency_key=idempotency_key)
    return refund_evaluate_task(refund_id)


def payout_execute_task(payout_id: int) -> str | None:
    payout = services.payout_execute(payout_id=payout_id)
    return payout.state if payout else None


def payout_execute_batch_task(batch_id: int) -> int:
    """Execute every approved payout of a bulk approval; each is claimed on its own."""
    done = 0
    for payout_id in Payout.objects.filter(batch_id=batch_id, state=Payout.State.APPROVED).values_list("pk", flat=True):
        if services.payout_execute(payout_id=payout_id):
            done += 1
    return done


def payout_send_task(payout_id: int) -> str:
    return services.payout_send(payout_id=payout_id).state


def sweep_submitted() -> int:
    """Evaluate requests a dead task left in `submitted` (older than a minute)."""
    cutoff = timezone.now() - timedelta(seconds=60)
    ids = RefundRequest.objects.filter(state=RefundRequest.State.SUBMITTED, created_at__lt=cutoff).values_list("pk", flat=True)[
        :500
    ]
    for refund_id in ids:
        services.refund_evaluate(refund_id=refund_id)
    return len(ids)


def sweep_payouts() -> int:
    """Re-drive payouts a crash left behind: approved but never claimed, or stuck in processing.

    A stuck one is sent again with its own idempotency key, so the gateway answers the first
    result and nothing is paid twice.
    """
    stale = timezone.now() - timedelta(seconds=settings.REFUND_DESK["PAYOUT_STALE_SECONDS"])
    n = 0
    for payout_id in Payout.objects.filter(state=Payout.State.APPROVED, approved_at__lt=stale).values_list("pk", flat=True)[:500]:
        services.payout_execute(payout_id=payout_id)
        n += 1
    for payout_id in Payout.objects.filter(state=Payout.State.PROCESSING, processing_started_at__lt=stale).values_list(
        "pk", flat=True
    )[:500]:
        services.payout_send(payout_id=payout_id)
        n += 1
    return n


def export_write_task(export_id: int) -> str:
    return exports.export_write(export_id=export_id)


def exports_clean_task() -> int:
    return exports.exports_clean()
