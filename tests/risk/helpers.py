"""History builders for risk tests: orders, returns and requests at chosen times."""

from datetime import timedelta
from decimal import Decimal

from django.db.models import F
from django.utils import timezone

from orders.models import AddressChange, Order, OrderLine
from refunds.models import RefundRequest
from tests.factories import AddressFactory, OrderFactory, RefundRequestFactory


def days_ago(n: float):
    return timezone.now() - timedelta(days=n)


def order(customer, *, days=10, units=1, price="50.00", address=None, **kw) -> Order:
    return OrderFactory(
        channel=customer.channel,
        customer=customer,
        placed_at=days_ago(days),
        lines=[("SKU-1", units, Decimal(price))],
        shipping_address=address,
        **kw,
    )


def sent_back(o: Order, units: int) -> None:
    """`units` of the order's first line were refunded (money moved)."""
    line = o.lines.order_by("pk").first()
    amount = line.unit_price * units
    OrderLine.objects.filter(pk=line.pk).update(refunded_quantity=units, refunded_amount=amount)
    Order.objects.filter(pk=o.pk).update(refunded_total=F("refunded_total") + amount)


def request(
    o: Order, *, hours=None, days=None, reason="size_fit", state=RefundRequest.State.REFUNDED, verdict=""
) -> RefundRequest:
    at = timezone.now() - (timedelta(hours=hours) if hours is not None else timedelta(days=days if days is not None else 1))
    return RefundRequestFactory(order=o, created_at=at, reason=reason, state=state, verdict=verdict)


def move_address(o: Order, customer, *, days=1, line1=None):
    new = AddressFactory(customer=customer, **({"line1": line1} if line1 else {}))
    AddressChange.objects.create(
        order=o, customer=customer, old_address=o.shipping_address, new_address=new, changed_at=days_ago(days)
    )
    Order.objects.filter(pk=o.pk).update(shipping_address=new)
    return new
