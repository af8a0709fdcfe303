"""The statements of a refund request's intake, written out in SQL: the only way a request
is admitted, on every database.

Intake is the product's hottest write: every channel's every request passes here, under the
order's lock. Through the ORM it cost some 5 ms of Python per request, most of it compiling
the same statements again each time (`bench/api_inprocess.py`, `docs/benchmarks.md`). Each
statement's text here is built once per database vendor from the models' own table and
column names; each request only binds its values.

These functions only read and write: what may be refunded, and every refusal, is decided in
Python by `refunds.services.holds.take`, between `lock_order` and `hold`, in the service's
transaction (`refunds.services.intake.refund_submit`). The statements are portable:
PostgreSQL locks rows with `FOR NO KEY UPDATE`; SQLite takes the database's write lock when
the transaction begins (`transaction_mode` IMMEDIATE in the settings), which serializes
intakes just the same. The check constraints on orders and lines refuse any hold beyond what
was paid, whatever the Python above them decided.
"""

from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models
from django.db.models import signals
from django.db.models.base import DEFERRED

from orders.models import Order, OrderLine
from refunds.models import RefundRequest

CENT = Decimal("0.01")


def _money(value) -> Decimal:
    """A money column as read by a raw cursor: Decimal on PostgreSQL, a float on SQLite."""
    if isinstance(value, Decimal):
        return value
    return Decimal(str(value)).quantize(CENT)


@cache
def _attnames(model) -> tuple[str, ...]:
    return tuple(f.attname for f in model._meta.concrete_fields)


def _loaded(model, values: dict):
    """An instance as the ORM would load it with only these fields (the rest deferred)."""
    attnames = _attnames(model)
    return model.from_db(connection.alias, attnames, [values.get(name, DEFERRED) for name in attnames])


def _columns(model, alias: str, names: tuple[str, ...]) -> str:
    qn = connection.ops.quote_name
    return ", ".join(f"{alias}.{qn(model._meta.get_field(name).column)}" for name in names)


def _lock_clause() -> str:
    features = connection.features
    if features.has_select_for_no_key_update:
        return " FOR NO KEY UPDATE"
    return " FOR UPDATE" if features.has_select_for_update else ""


ORDER_FIELDS = ("id", "customer", "currency", "paid_total", "refunded_total", "held_total")
LINE_FIELDS = (
    "id",
    "sku",
    "name",
    "quantity",
    "line_total",
    "refunded_quantity",
    "refunded_amount",
    "held_quantity",
    "held_amount",
)


@dataclass(frozen=True)
class _Statements:
    lock: str
    order_exists: str
    idempotent: str
    hold_order: str
    line_table: str
    line_id: str


@cache
def _statements(vendor: str) -> _Statements:
    """The intake's SQL for one database vendor, built from the models' metadata once."""
    qn = connection.ops.quote_name
    order, line, refund = Order._meta, OrderLine._meta, RefundRequest._meta
    col = lambda meta, name: qn(meta.get_field(name).column)  # noqa: E731
    order_and_lines = (
        f"{_columns(Order, 'o', ORDER_FIELDS)}, {_columns(OrderLine, 'l', LINE_FIELDS)}"
        f" FROM {qn(order.db_table)} o JOIN {qn(line.db_table)} l ON l.{col(line, 'order')} = o.{col(order, 'id')}"
        f" WHERE o.{col(order, 'channel')} = %s AND o.{col(order, 'number')} = %s"
        f" ORDER BY l.{col(line, 'id')}"
    )
    key_match = f"FROM {qn(refund.db_table)} WHERE {col(refund, 'channel')} = %s AND {col(refund, 'idempotency_key')} = %s"
    return _Statements(
        # The order and its lines, locked in one statement (the order's row first, then the
        # lines by pk: the lock order every service keeps).
        lock=f"SELECT {order_and_lines}{_lock_clause()}",
        order_exists=(f"SELECT 1 FROM {qn(order.db_table)} WHERE {col(order, 'channel')} = %s AND {col(order, 'number')} = %s"),
        idempotent=f"SELECT {col(refund, 'id')}, {col(refund, 'body_fingerprint')} {key_match}",
        hold_order=(
            f"UPDATE {qn(order.db_table)} SET {col(order, 'held_total')} = ROUND({col(order, 'held_total')} + %s, 2)"
            f" WHERE {col(order, 'id')} = %s"
        ),
        line_table=qn(line.db_table),
        line_id=col(line, "id"),
    )


def lock_order(cursor, *, channel_id: int, number: str) -> tuple[Order | None, dict[str, OrderLine]]:
    """Lock the order and its lines; return (order, lines by SKU), or (None, {}) when the order
    has no lines (see `order_exists`). The instances carry only the fields read here."""
    cursor.execute(_statements(connection.vendor).lock, [channel_id, number])
    rows = cursor.fetchall()
    if not rows:
        return None, {}
    return _build(channel_id, number, rows)


@cache
def _readers(model, names: tuple[str, ...]) -> tuple[tuple[str, bool], ...]:
    """(attname, is money) of each of `names`, the columns a statement here reads, in order."""
    fields = [model._meta.get_field(name) for name in names]
    return tuple((f.attname, isinstance(f, models.DecimalField)) for f in fields)


def _values(model, names: tuple[str, ...], row) -> dict:
    """A row of `names`' columns by attname, as the ORM would load it (money as Decimal)."""
    return {
        attname: _money(value) if money and value is not None else value
        for (attname, money), value in zip(_readers(model, names), row, strict=True)
    }


def _build(channel_id: int, number: str, rows) -> tuple[Order, dict[str, OrderLine]]:
    """Order and line instances from rows of ORDER_FIELDS then LINE_FIELDS."""
    n = len(ORDER_FIELDS)
    order = _loaded(Order, {"channel_id": channel_id, "number": number, **_values(Order, ORDER_FIELDS, rows[0][:n])})
    lines = {}
    for row in rows:
        line = _loaded(OrderLine, {"order_id": order.pk, **_values(OrderLine, LINE_FIELDS, row[n:])})
        line.order = order
        lines[line.sku] = line
    return order, lines


def order_exists(cursor, *, channel_id: int, number: str) -> bool:
    cursor.execute(_statements(connection.vendor).order_exists, [channel_id, number])
    return cursor.fetchone() is not None


def idempotent_match(cursor, *, channel_id: int, key: str) -> tuple[int, str] | None:
    """(id, body fingerprint) of the channel's request under this Idempotency-Key, if any."""
    cursor.execute(_statements(connection.vendor).idempotent, [channel_id, key])
    return cursor.fetchone()


def hold(cursor, *, order: Order, moves: list[tuple[OrderLine, int, Decimal]]) -> None:
    """Add (line, quantity, amount) to the lines' holds and their sum to the order's, in two
    UPDATEs whatever the number of lines; the instances are updated to match."""
    st = _statements(connection.vendor)
    qn = connection.ops.quote_name
    held_q, held_a = qn(OrderLine._meta.get_field("held_quantity").column), qn(OrderLine._meta.get_field("held_amount").column)
    whens = " ".join(["WHEN %s THEN %s"] * len(moves))
    cursor.execute(
        f"UPDATE {st.line_table} SET {held_q} = {held_q} + CASE {st.line_id} {whens} END,"
        f" {held_a} = ROUND({held_a} + CASE {st.line_id} {whens} END, 2)"
        f" WHERE {st.line_id} IN ({', '.join(['%s'] * len(moves))})",
        [
            *(v for line, qty, _ in moves for v in (line.pk, qty)),
            *(v for line, _, amount in moves for v in (line.pk, amount)),
            *(line.pk for line, _, _ in moves),
        ],
    )
    total = sum((amount for _, _, amount in moves), Decimal("0.00"))
    cursor.execute(st.hold_order, [total, order.pk])
    for line, qty, amount in moves:
        line.held_quantity += qty
        line.held_amount += amount
    order.held_total += total


@cache
def _fields(model) -> list:
    """The fields an INSERT of `model` writes: all but the primary key."""
    return [f for f in model._meta.local_concrete_fields if not f.primary_key]


def _row(obj) -> tuple[tuple[str, ...], list]:
    """(columns, values) to INSERT `obj` with: every field's `pre_save` (auto_now) and
    database preparation run, as `save()` would; the ORM's query compilation does not.
    Nullable fields that are None are left out (the column is NULL all the same), which keeps
    the statement under psycopg's 50 parameters, the most it caches the parsing of."""
    columns, values = [], []
    for field in _fields(type(obj)):
        value = field.pre_save(obj, True)
        if value is None and field.null:
            continue
        columns.append(field.column)
        values.append(field.get_db_prep_save(value, connection))
    return tuple(columns), values


def _refuse_save_signals(model) -> None:
    """An INSERT written here skips `save()`: a receiver of the model's save signals, added
    after this was written, would silently not run. Stop with a sentence instead."""
    if signals.pre_save.has_listeners(model) or signals.post_save.has_listeners(model):
        raise ImproperlyConfigured(
            f"{model.__name__} has pre_save/post_save receivers, which refunds/intake.py's INSERT would skip:"
            " call them from the service instead (no business logic in signals), or save it through the ORM."
        )


def _saved(obj, pk) -> None:
    obj.pk = pk
    obj._state.adding = False
    obj._state.db = connection.alias


def insert(cursor, objs: list) -> None:
    """INSERT new instances of one model (setting the same columns) in one statement and set
    their pks, as `save()` and `bulk_create()` would."""
    qn = connection.ops.quote_name
    _refuse_save_signals(type(objs[0]))
    rows = [_row(obj) for obj in objs]
    columns = rows[0][0]
    if any(row_columns != columns for row_columns, _ in rows):
        raise ValueError("Objects inserted together must set the same columns.")
    meta = type(objs[0])._meta
    placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
    cursor.execute(
        f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(c) for c in columns)}) VALUES {', '.join([placeholders] * len(objs))}"
        f" RETURNING {qn(meta.pk.column)}",
        [value for _, values in rows for value in values],
    )
    for obj, (pk,) in zip(objs, cursor.fetchall(), strict=True):
        _saved(obj, pk)
