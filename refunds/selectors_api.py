"""Reads of refund requests for the channel API, each a fixed number of queries."""

from django.db.models import Prefetch

from refunds.models import RefundEvent, RefundLine, RefundRequest


def _base(channel):
    return (
        RefundRequest.objects.filter(channel=channel)
        .select_related("order")
        .prefetch_related(Prefetch("lines", queryset=RefundLine.objects.select_related("order_line").order_by("pk")))
    )


def refund_for_channel(*, channel, refund_id: int) -> RefundRequest | None:
    return (
        _base(channel)
        .prefetch_related(
            Prefetch("events", queryset=RefundEvent.objects.filter(public=True).order_by("at", "pk"), to_attr="public_events"),
        )
        .select_related("return_parcel")
        .filter(pk=refund_id)
        .first()
    )


def refunds_for_channel(*, channel, order_number: str | None = None, state: str | None = None):
    qs = _base(channel)
    if order_number:
        qs = qs.filter(order__number=order_number)
    if state:
        qs = qs.filter(state=state)
    return qs.order_by("-created_at", "-pk")
