import logging
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Case, DecimalField, F, IntegerField, Value, When
from django.utils import timezone

from orders.models import Order, OrderLine
from refunds.errors import RefundValidationError
from refunds.models import (
    RefundRequest,
)
from refunds.services.base import CENT, cents

logger = logging.getLogger(__name__)

NOTHING_LEFT = "Nothing is left to refund on this order."


def release_lines(moves: list[tuple[int, int, Decimal]], *, refunded: bool = False) -> None:
    """Take (order_line_id, quantity, amount) out of the lines' holds, and with `refunded` into
    their refunded figures, in one UPDATE for all lines, so the cost does not grow with the
    order's size. The caller holds the order and line locks. (Holds are taken at intake: `take`
    decides them, `refunds.intake.hold` writes them.)"""
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
    """The money for `qty` units; the last units take whatever is left, so no cent is lost to
    rounding, and no units take more than is left (below a cent a unit, half a cent up on
    each of the first units could otherwise add up past the line's total)."""
    left = line.line_total - line.refunded_amount - line.held_amount
    if qty == line.refundable_quantity:
        return left
    return min((line.line_total * qty / line.quantity).quantize(CENT, rounding=ROUND_HALF_UP), left)


def take(order: Order, lines: dict[str, OrderLine], asked) -> list[tuple[OrderLine, int, Decimal]]:
    """What a new request on `order` may hold: (line, quantity, amount) per line asked for, in
    the order asked; `asked` is a list of (sku, quantity) pairs (`LineRequest`), or None for
    all that is left on every line. `lines` are the order's lines by SKU, read under their
    locks. Raises RefundValidationError naming each line refused, or the order's money.

    The one statement of "what may be refunded": intake holds exactly this, and the check
    constraints on orders and lines stand behind it."""
    wanted = _wanted(lines, asked)
    taken = [(line, qty, line_amount(line, qty)) for line, qty in wanted]
    amount = sum((a for _, _, a in taken), Decimal("0.00"))
    if amount <= 0:
        raise RefundValidationError({"lines": [NOTHING_LEFT]})
    if amount > order.refundable_total:
        raise RefundValidationError(
            {"lines": [f"{amount} is more than is left to refund on the order ({order.refundable_total})."]}
        )
    return taken


def _wanted(lines: dict[str, OrderLine], asked) -> list[tuple[OrderLine, int]]:
    if asked is None:
        wanted = [(line, line.refundable_quantity) for line in lines.values() if line.refundable_quantity > 0]
        if not wanted:
            raise RefundValidationError({"lines": [NOTHING_LEFT]})
        return wanted
    if not asked:
        raise RefundValidationError({"lines": ["Name at least one line, or leave lines out for the whole order."]})
    errors: list[str] = []
    wanted = []
    seen = set()
    for i, req in enumerate(asked):
        line = lines.get(req.sku)
        if line is None:
            errors.append(f"line {i + 1}: SKU '{req.sku}' is not on this order.")
        elif req.sku in seen:
            errors.append(f"line {i + 1}: SKU '{req.sku}' is named twice.")
        elif req.quantity <= 0:
            errors.append(f"line {i + 1}: quantity must be at least 1.")
        elif req.quantity > line.refundable_quantity:
            errors.append(f"line {i + 1}: {req.quantity} of '{req.sku}' asked, only {line.refundable_quantity} left to refund.")
        else:
            wanted.append((line, req.quantity))
        seen.add(req.sku)
    if errors:
        raise RefundValidationError({"lines": errors})
    return wanted


def release_holds(refund: RefundRequest) -> None:
    """Give back what the request held on the order; the caller holds the order and line locks."""
    if refund.holds_released_at is not None:
        return
    release_lines(request_moves(refund))
    Order.objects.filter(pk=refund.order_id).update(held_total=cents(F("held_total") - refund.amount_requested))
    refund.holds_released_at = timezone.now()
    refund.save(update_fields=["holds_released_at"])
