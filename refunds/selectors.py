"""Reads for the staff screens: queues, a request's page, the role home page.

Every queryset here fetches what its screen shows in a fixed number of queries.
"""

from django.db.models import Exists, OuterRef, Prefetch
from django.utils import timezone

from notifications.models import SlaBreach
from refunds.models import RefundEvent, RefundLine, RefundRequest, ReturnParcel, sources_of

State = RefundRequest.State

SUPPORT_QUEUE_STATES = [State.UNDER_REVIEW, State.AWAITING_CUSTOMER]
WAREHOUSE_QUEUE_STATES = [State.AWAITING_RETURN, State.RETURN_IN_TRANSIT]


def support_queue():
    """Requests for the support changelist; the state filter narrows it to the queue."""
    return RefundRequest.objects.select_related("channel")


def refund_for_page(refund_id: int) -> RefundRequest | None:
    """One request with everything its change page and evidence page show."""
    return (
        RefundRequest.objects.select_related(
            "channel",
            "customer",
            "order__channel",
            "approved_by",
            "first_approved_by",
            "verdict_by",
            "return_parcel",
            "inspection",
        )
        .prefetch_related(
            Prefetch("lines", queryset=RefundLine.objects.select_related("order_line").order_by("pk")),
        )
        .filter(pk=refund_id)
        .first()
    )


def refund_events(refund_id: int):
    return (
        RefundEvent.objects.filter(request_id=refund_id)
        .select_related("actor_user", "actor_channel", "payout")
        .order_by("at", "pk")
    )


def warehouse_queue():
    return ReturnParcel.objects.select_related("request")


def parcel_for_inspection(refund_id: int) -> ReturnParcel | None:
    return (
        ReturnParcel.objects.select_related("request")
        .prefetch_related(Prefetch("request__lines", queryset=RefundLine.objects.select_related("order_line").order_by("pk")))
        .filter(request_id=refund_id)
        .first()
    )


# --- the lifecycle's timers -----------------------------------------------------------


def overdue_returns(*, now=None):
    """Requests still waiting for a parcel past the return deadline, oldest first."""
    now = now or timezone.now()
    return RefundRequest.objects.filter(state__in=sources_of(RefundRequest.expire), return_parcel__deadline__lt=now).order_by(
        "pk"
    )


def timed_out_awaiting_customer(*, before):
    """Requests waiting for the customer's answer to a question since before `before`. An
    offered alternative is not timed out here: declining it is the customer's call."""
    return RefundRequest.objects.filter(
        state__in=sources_of(RefundRequest.resume), alternative__isnull=True, state_changed_at__lt=before
    ).order_by("pk")


def sla_breach_candidates(*, state: str, level: str, cutoff, limit: int = 500):
    """Requests in `state` since before `cutoff` that have no breach of `level` for this stay."""
    already = SlaBreach.objects.filter(
        refund=OuterRef("pk"), state=state, state_changed_at=OuterRef("state_changed_at"), level=level
    )
    return list(
        RefundRequest.objects.filter(state=state, state_changed_at__lte=cutoff)
        .exclude(Exists(already))
        .select_related("order", "customer")
        .order_by("state_changed_at")[:limit]
    )
