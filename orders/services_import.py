"""Create orders from a spreadsheet's rows (one row per order line), all or nothing.

The spreadsheet layer (`orders/resources.py`) parses each cell; this service checks what
only the whole file can tell (duplicate lines, an order split over rows that disagree, an
order that already exists, a payment that doesn't add up) and creates the orders, their
customers, lines and payments through `orders.services.order_upsert`, the channel API's own
service, so an imported order is made like any other: "order received", then paid through
`order_transition`, with who imported it in its history, and the customer's risk refreshed.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils.translation import gettext

from config.actors import Actor
from config.errors import ActionForbidden, DomainValidationError
from orders.models import Channel, Order, OrderLine, column_max
from orders.services import order_upsert

PERM_IMPORT = "orders.add_order"
# The columns' own bounds: a bigger figure is a row error, not a database error.
_LINE_TOTAL_MAX = column_max(OrderLine, "line_total")
_ORDER_TOTAL_MAX = column_max(Order, "paid_total")


class OrderImportError(DomainValidationError):
    """Rows that can't be imported; `row_errors` maps a 1-based data row number to messages."""

    def __init__(self, row_errors: dict[int, list[str]]):
        super().__init__({f"row {n}": msgs for n, msgs in sorted(row_errors.items())})
        self.row_errors = row_errors


@dataclass(frozen=True)
class ImportLine:
    row: int
    order_number: str
    channel: Channel
    customer_external_id: str
    customer_name: str
    customer_phone: str
    placed_at: datetime
    currency: str
    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    shipping_fee: Decimal
    payment_method: str
    payment_reference: str
    payment_amount: Decimal


# Every row of one order must agree on these.
_ORDER_FIELDS = (
    "customer_external_id",
    "customer_name",
    "customer_phone",
    "placed_at",
    "currency",
    "shipping_fee",
    "payment_method",
    "payment_reference",
    "payment_amount",
)


def _check(lines: list[ImportLine]) -> dict[tuple[int, str], list[ImportLine]]:
    errors: dict[int, list[str]] = defaultdict(list)
    orders: dict[tuple[int, str], list[ImportLine]] = defaultdict(list)
    for line in lines:
        orders[(line.channel.pk, line.order_number)].append(line)
    existing = set()
    for channel_id, numbers in _by_channel(orders).items():
        existing |= {
            (channel_id, n)
            for n in Order.objects.filter(channel_id=channel_id, number__in=numbers).values_list("number", flat=True)
        }
    for key, group in orders.items():
        first = group[0]
        if key in existing:
            for line in group:
                errors[line.row].append(
                    gettext("Order %(order)s already exists in %(channel)s.")
                    % {"order": first.order_number, "channel": first.channel.name}
                )
            continue
        seen_skus: dict[str, int] = {}
        for line in group:
            if line.sku in seen_skus:
                errors[line.row].append(
                    gettext("SKU %(sku)s appears twice in order %(order)s (row %(row)d).")
                    % {"sku": line.sku, "order": line.order_number, "row": seen_skus[line.sku]}
                )
            seen_skus.setdefault(line.sku, line.row)
            for field in _ORDER_FIELDS:
                if getattr(line, field) != getattr(first, field):
                    errors[line.row].append(
                        gettext("%(field)s differs from row %(row)d of the same order.") % {"field": field, "row": first.row}
                    )
        for line in group:
            if OrderLine.total_of(unit_price=line.unit_price, quantity=line.quantity) > _LINE_TOTAL_MAX:
                errors[line.row].append(
                    gettext("unit_price × quantity is more than a line can hold (%(max)s).") % {"max": _LINE_TOTAL_MAX}
                )
        total = sum((line.unit_price * line.quantity for line in group), Decimal("0.00")) + first.shipping_fee
        if total > _ORDER_TOTAL_MAX:
            errors[first.row].append(
                gettext("Order %(order)s comes to more than an order can hold (%(max)s).")
                % {"order": first.order_number, "max": _ORDER_TOTAL_MAX}
            )
            continue
        if first.payment_amount != total:
            errors[first.row].append(
                gettext("payment_amount %(paid)s is not the lines plus shipping (%(total)s) of order %(order)s.")
                % {"paid": first.payment_amount, "total": total, "order": first.order_number}
            )
    if errors:
        raise OrderImportError(dict(errors))
    return orders


def _by_channel(orders) -> dict[int, list[str]]:
    out: dict[int, list[str]] = defaultdict(list)
    for channel_id, number in orders:
        out[channel_id].append(number)
    return out


def order_import_rows(*, lines: list[ImportLine], actor: Actor) -> list[Order]:
    """Create every order of the file, paid, or none of them (raises OrderImportError).

    Each order is made by `order_upsert`, as a channel's would be: its history starts with
    "order received" and the customer's risk profile is refreshed once the file commits."""
    if not actor.has_perm(PERM_IMPORT):
        raise ActionForbidden(gettext("%(actor)s may not import orders.") % {"actor": actor.label})
    with transaction.atomic():
        orders = _check(lines)
        created = []
        for group in orders.values():
            first = group[0]
            try:
                order, _ = order_upsert(
                    channel=first.channel,
                    actor=actor,
                    number=first.order_number,
                    data=_order_body(group),
                    note="imported from a spreadsheet",
                    create_only=True,
                )
            except DomainValidationError as exc:
                # Only what the file check can't see: an order that arrived since it ran.
                raise OrderImportError({line.row: [exc.message] for line in group}) from None
            created.append(order)
    return created


def _order_body(group: list[ImportLine]) -> dict:
    """The file's rows of one order as the body `order_upsert` takes (the API's shape)."""
    first = group[0]
    return {
        "customer": {
            "external_id": first.customer_external_id,
            "name": first.customer_name,
            "phone": first.customer_phone,
        },
        "currency": first.currency,
        "placed_at": first.placed_at,
        "shipping_fee": first.shipping_fee,
        "lines": [
            {"sku": line.sku, "name": line.name, "quantity": line.quantity, "unit_price": line.unit_price} for line in group
        ],
        "payment": {
            "method": first.payment_method,
            "reference": first.payment_reference,
            "amount": first.payment_amount,
            "paid_at": first.placed_at,
        },
    }
