"""Reads of orders, shaped for the channel API (a fixed number of queries per call)."""

from django.db.models import Prefetch

from orders.models import Order, OrderLine, Shipment


def order_for_channel(*, channel, number: str) -> Order | None:
    return (
        Order.objects.filter(channel=channel, number=number)
        .select_related("customer")
        .prefetch_related(
            Prefetch("lines", queryset=OrderLine.objects.order_by("pk")),
            Prefetch("shipments", queryset=Shipment.objects.order_by("pk")),
        )
        .first()
    )
