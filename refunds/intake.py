"""The statements of a refund request's intake, written out in SQL.

Intake is the product's hottest write: every channel's every request passes here, under the
order's lock. Through the ORM it cost some 5 ms of Python per request, most of it compiling
the same eight statements again each time (`bench/api_inprocess.py`). Here each statement's
text is built once per database vendor from the models' own table and column names, and
each request only binds its values. The rules stay where they were: `refunds.services`
validates, decides what is held, and calls these in its transaction; the check constraints
on orders and lines still refuse any hold beyond what was paid.

The SQL is portable: PostgreSQL locks with `FOR NO KEY UPDATE`; SQLite has no row locks
and takes the database's write lock when the transaction begins (`transaction_mode`
IMMEDIATE in the settings), which serializes intakes just the same.
"""

from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from django.db import connection

from orders.models import Order, OrderLine
from refunds.models import RefundEvent, RefundLine, RefundRequest

CENT = Decimal("0.01")
# PostgreSQL takes the two-statement path (`read_unlocked`, then `write_checked`); other
# databases, and PostgreSQL whenever the check fails, the locked one.
CHECKED_WRITE = connection.vendor == "postgresql"


def _money(value) -> Decimal:
    """A money column as read by a raw cursor: Decimal on PostgreSQL, a float on SQLite."""
    if isinstance(value, Decimal):
        return value
    return Decimal(str(value)).quantize(CENT)


def _loaded(model, values: dict):
    """An instance as the ORM would load it with only these fields (the rest deferred)."""
    return model.from_db(
        connection.alias, list(values), [values[f.attname] for f in model._meta.concrete_fields if f.attname in values]
    )


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
    read_unlocked: str
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
        read_unlocked=(
            f"SELECT (SELECT {col(refund, 'id')} {key_match}), (SELECT {col(refund, 'body_fingerprint')} {key_match}),"
            f" {order_and_lines}"
        ),
        order_exists=(f"SELECT 1 FROM {qn(order.db_table)} WHERE {col(order, 'channel')} = %s AND {col(order, 'number')} = %s"),
        idempotent=(
            f"SELECT {col(refund, 'id')}, {col(refund, 'body_fingerprint')} FROM {qn(refund.db_table)}"
            f" WHERE {col(refund, 'channel')} = %s AND {col(refund, 'idempotency_key')} = %s"
        ),
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


def _build(channel_id: int, number: str, rows) -> tuple[Order, dict[str, OrderLine]]:
    """Order and line instances from rows of ORDER_FIELDS then LINE_FIELDS."""
    first = rows[0]
    n = len(ORDER_FIELDS)
    order = _loaded(
        Order,
        {
            "id": first[0],
            "channel_id": channel_id,
            "number": number,
            "customer_id": first[1],
            "currency": first[2],
            "paid_total": _money(first[3]),
            "refunded_total": _money(first[4]),
            "held_total": _money(first[5]),
        },
    )
    lines = {}
    for row in rows:
        pk, sku, name, quantity, total, rq, ra, hq, ha = row[n:]
        line = _loaded(
            OrderLine,
            {
                "id": pk,
                "order_id": order.pk,
                "sku": sku,
                "name": name,
                "quantity": quantity,
                "line_total": _money(total),
                "refunded_quantity": rq,
                "refunded_amount": _money(ra),
                "held_quantity": hq,
                "held_amount": _money(ha),
            },
        )
        line.order = order
        lines[sku] = line
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
def _insert_sql(model, vendor: str) -> tuple[str, str, str, list]:
    """(head, one row's placeholders, returning clause, fields) of an INSERT for `model`."""
    qn = connection.ops.quote_name
    meta = model._meta
    fields = [f for f in meta.local_concrete_fields if not f.primary_key]
    head = f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) VALUES "
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    return head, row, f" RETURNING {qn(meta.pk.column)}", fields


def insert(cursor, objs: list) -> None:
    """INSERT new instances of one model in one statement and set their pks, as `save()` and
    `bulk_create()` would: every field's `pre_save` (auto_now) and database preparation run;
    the ORM's query compilation does not. The models saved here have no save signals."""
    head, row, returning, fields = _insert_sql(type(objs[0]), connection.vendor)
    params = []
    for obj in objs:
        params.extend(f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields)
    cursor.execute(head + ", ".join([row] * len(objs)) + returning, params)
    for obj, (pk,) in zip(objs, cursor.fetchall(), strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = connection.alias


# --- PostgreSQL: read without locks, then one statement that checks and writes -------------


def read_unlocked(cursor, *, channel_id: int, number: str, key_channel_id: int, key: str):
    """The order, its lines and the Idempotency-Key's match, as committed now, in one
    statement without locks: (order or None, lines by SKU, (id, fingerprint) or None).
    What it read is what `write_checked` then proves unchanged under the locks."""
    cursor.execute(_statements(connection.vendor).read_unlocked, [key_channel_id, key, key_channel_id, key, channel_id, number])
    rows = cursor.fetchall()
    if not rows:
        return None, {}, None
    match = (rows[0][0], rows[0][1]) if rows[0][0] is not None else None
    order, lines = _build(channel_id, number, [row[2:] for row in rows])
    return order, lines, match


def _row(obj) -> tuple[tuple[str, ...], list]:
    """(columns, values) to INSERT `obj` with: every field's `pre_save` and database
    preparation run, as `save()` would; nullable fields that are None are left out (the
    column is NULL all the same), which keeps the statement under psycopg's 50 parameters,
    the most it caches the parsing of."""
    columns, values = [], []
    for field in _insert_sql(type(obj), connection.vendor)[3]:
        value = field.pre_save(obj, True)
        if value is None and field.null:
            continue
        columns.append(field.column)
        values.append(field.get_db_prep_save(value, connection))
    return tuple(columns), values


@cache
def _write_sql(vendor: str, request_columns: tuple[str, ...], event_columns: tuple[str, ...]) -> str:
    qn = connection.ops.quote_name
    order, line = Order._meta, OrderLine._meta
    col = lambda meta, name: qn(meta.get_field(name).column)  # noqa: E731
    ot, lt = qn(order.db_table), qn(line.db_table)
    oid, lid, l_order = col(order, "id"), col(line, "id"), col(line, "order")
    hq, ha, rq, ra = (col(line, f) for f in ("held_quantity", "held_amount", "refunded_quantity", "refunded_amount"))
    # A refund line is (request, order line, quantity, amount), all taken from the CTEs below.
    refund_line = RefundLine._meta
    assert [f.name for f in refund_line.local_concrete_fields if not f.primary_key] == [
        "request",
        "order_line",
        "quantity",
        "amount",
    ], "RefundLine gained a field: write it in _write_sql"
    request_id = col(RefundRequest._meta, "id")
    event_values = ", ".join(
        "(SELECT id FROM req)" if c == RefundEvent._meta.get_field("request").column else "%s" for c in event_columns
    )
    return (
        # The order's lock first, then the lines': the order every service locks in.
        f"WITH o AS (SELECT {oid} FROM {ot} WHERE {oid} = %s FOR NO KEY UPDATE),"
        " want AS (SELECT * FROM unnest(%s::bigint[], %s::integer[], %s::numeric[], %s::integer[], %s::numeric[],"
        " %s::integer[], %s::numeric[]) AS w (id, qty, amount, hq, ha, rq, ra)),"
        # A line is taken only if it is as `read_unlocked` saw it; after waiting for a lock,
        # PostgreSQL checks this again against the line's newest version.
        f" cur AS (SELECT l.{lid} AS id, want.qty, want.amount FROM {lt} l JOIN want ON l.{lid} = want.id"
        f" JOIN o ON l.{l_order} = o.{oid}"
        f" WHERE l.{hq} = want.hq AND l.{ha} = want.ha AND l.{rq} = want.rq AND l.{ra} = want.ra FOR NO KEY UPDATE OF l),"
        f" held AS (UPDATE {lt} l SET {hq} = l.{hq} + cur.qty, {ha} = ROUND(l.{ha} + cur.amount, 2)"
        f" FROM cur WHERE l.{lid} = cur.id RETURNING l.{lid}),"
        f" held_order AS (UPDATE {ot} SET {col(order, 'held_total')} = ROUND({col(order, 'held_total')} + %s, 2)"
        f" WHERE {oid} = %s RETURNING {oid}),"
        f" req AS (INSERT INTO {qn(RefundRequest._meta.db_table)} ({', '.join(qn(c) for c in request_columns)})"
        f" VALUES ({', '.join(['%s'] * len(request_columns))}) RETURNING {request_id} AS id),"
        # A line that changed is not in `cur`: its amount is NULL, which the column refuses,
        # and the whole statement (holds included) is undone.
        f" lines AS (INSERT INTO {qn(refund_line.db_table)}"
        f" ({', '.join(qn(f.column) for f in refund_line.local_concrete_fields if not f.primary_key)})"
        " SELECT req.id, want.id, want.qty, cur.amount FROM req CROSS JOIN want LEFT JOIN cur ON cur.id = want.id"
        f" RETURNING {col(refund_line, 'id')} AS id, {col(refund_line, 'order_line')} AS order_line_id),"
        f" ev AS (INSERT INTO {qn(RefundEvent._meta.db_table)} ({', '.join(qn(c) for c in event_columns)})"
        f" VALUES ({event_values}) RETURNING {col(RefundEvent._meta, 'id')} AS id)"
        " SELECT (SELECT id FROM req), (SELECT id FROM ev), (SELECT count(*) FROM held), (SELECT count(*) FROM held_order),"
        " lines.id, lines.order_line_id FROM lines"
    )


def write_checked(cursor, *, order: Order, moves: list[tuple[OrderLine, int, Decimal]], refund, refund_lines, event) -> None:
    """Hold `moves` on the order's lines and the order and insert the request, its lines and
    its event, in one statement that first proves, under the order's and the lines' locks,
    that every line is still as read. If one is not, the statement changes nothing and
    raises IntegrityError (the caller then takes the locked path). PostgreSQL only. The
    lines are written from `moves`; `refund_lines` (one per move, in order) get their pks."""
    request_columns, request_values = _row(refund)
    event_request = RefundEvent._meta.get_field("request").column
    event_columns, event_values = _row(event)
    if event_request not in event_columns:  # the request has no pk yet: the statement fills it in
        event_columns, event_values = (event_request, *event_columns), [None, *event_values]
    total = sum((amount for _, _, amount in moves), Decimal("0.00"))
    lines = [line for line, _, _ in moves]
    params = [
        order.pk,
        [line.pk for line in lines],
        [qty for _, qty, _ in moves],
        [amount for _, _, amount in moves],
        [line.held_quantity for line in lines],
        [line.held_amount for line in lines],
        [line.refunded_quantity for line in lines],
        [line.refunded_amount for line in lines],
        total,
        order.pk,
        *request_values,
        *(v for c, v in zip(event_columns, event_values, strict=True) if c != event_request),
    ]
    cursor.execute(_write_sql(connection.vendor, request_columns, event_columns), params)
    rows = cursor.fetchall()
    refund_id, event_id, held_lines, held_orders = rows[0][:4]
    if (
        held_lines != len(moves) or held_orders != 1 or len(rows) != len(refund_lines)
    ):  # pragma: no cover - the statement guards this
        raise AssertionError("the intake statement wrote less than it should have")
    by_line = {row[5]: row[4] for row in rows}
    for obj, pk in ((refund, refund_id), (event, event_id), *((rl, by_line[rl.order_line_id]) for rl in refund_lines)):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = connection.alias
    for rl in refund_lines:
        rl.request_id = refund_id
    event.request_id = refund_id
    for line, qty, amount in moves:
        line.held_quantity += qty
        line.held_amount += amount
    order.held_total += total
