import logging
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Case, DecimalField, F, IntegerField, Value, When
from django.utils import timezone

from orders.models import Order, OrderLine
from refunds.models import (
    RefundRequest,
)
from refunds.services.base import CENT, cents

logger = logging.getLogger(__name__)


def release_lines(moves: list[tuple[int, int, Decimal]], *, refunded: bool = False) -> None:
    """Take (order_line_id, quantity, amount) out of the lines' holds, and with `refunded` into
    their refunded figures, in one UPDATE for all lines, so the cost does not grow with the
    order's size. The caller holds the order and line locks. (Holds are taken at intake, by
    `refunds.intake`.)"""
    if not moves:
        return
    qty = Case(*[When(pk=pk, then=Value(q)) for pk, q, _ in moves], output_field=IntegerField())
    amt = Case(*[When(pk=pk, then=Value(a)) for pk, _, a in moves], output_field=DecimalField(max_digits=14, decimal_places=2))
    updates = {"held_quantity": F("held_quantity") - qty, "held_amount": cents(F("held_amount") - amt)}
    if refunded:
        updates |= {"refunded_quantity": F("refunded_quantity") + qty, "refunded_amount": cents(F("refunded_amount") + amt)}
    OrderLine.objects.filter(pk__in=[pk for pk, _, _ in moves]).update(**updates)


def request_moves(refund: RefundRequest) -> list[tuple[int, int, Decimal]]:
    return list(refund.lines.values_list("order_line_id", "quantity", "amount"))


def line_amount(line: OrderLine, qty: int) -> Decimal:
    """The money for `qty` units; the last units take whatever is left, so no cent is lost to rounding."""
    if qty == line.refundable_quantity:
        return line.line_total - line.refunded_amount - line.held_amount
    return (line.line_total * qty / line.quantity).quantize(CENT, rounding=ROUND_HALF_UP)


def release_holds(refund: RefundRequest) -> None:
    """Give back what the request held on the order; the caller holds the order and line locks."""
    if refund.holds_released_at is not None:
        return
    release_lines(request_moves(refund))
    Order.objects.filter(pk=refund.order_id).update(held_total=cents(F("held_total") - refund.amount_requested))
    refund.holds_released_at = timezone.now()
    refund.save(update_fields=["holds_released_at"])
