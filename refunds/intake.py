"""The statements of a refund request's intake, written out in SQL.

Intake is the product's hottest write: every channel's every request passes here, under the
order's lock. Through the ORM it cost some 5 ms of Python per request, most of it compiling
the same eight statements again each time, and as many round trips to the database
(`bench/api_inprocess.py`). Each statement's text here is built once per database vendor
from the models' own table and column names; each request only binds its values.

Two ways, one set of rules (`refunds.services.refund_submit` chooses):

- On PostgreSQL, `submit` is the whole intake in one statement without a transaction of its
  own: lock, work the amounts out, hold, insert. The check, unique and not-null constraints
  refuse anything wrong, and a refused statement writes nothing.
- The locked path (`lock_order`, `idempotent_match`, `hold`, `insert`) runs in the service's
  transaction: always on SQLite, and on PostgreSQL after `submit` refused, to say exactly
  why or to answer a replay. It is portable: PostgreSQL locks rows with `FOR NO KEY
  UPDATE`; SQLite takes the database's write lock when the transaction begins
  (`transaction_mode` IMMEDIATE in the settings), which serializes intakes just the same.

Either way the check constraints on orders and lines refuse any hold beyond what was paid.
"""

from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import Field
from django.db.models.base import DEFERRED
from django_q.models import OrmQ

from orders.models import Order, OrderLine
from refunds.models import RefundEvent, RefundLine, RefundRequest

CENT = Decimal("0.01")
# PostgreSQL takes a request in one statement (`submit`); other databases, and whatever that
# statement refuses, the locked path.
ONE_STATEMENT = connection.vendor == "postgresql"


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
def _fields(model) -> list:
    """The fields an INSERT of `model` writes: all but the primary key."""
    return [f for f in model._meta.local_concrete_fields if not f.primary_key]


def _row(obj, skip: tuple[str, ...] = ()) -> tuple[tuple[str, ...], list]:
    """(columns, values) to INSERT `obj` with, but for the `skip` columns: every field's
    `pre_save` (auto_now) and database preparation run, as `save()` would; the ORM's query
    compilation does not. Nullable fields that are None are left out (the column is NULL
    all the same), which keeps `submit` under psycopg's 50 parameters, the most it caches
    the parsing of. The models written here have no save signals."""
    columns, values = [], []
    for field in _fields(type(obj)):
        if field.column in skip:
            continue
        value = field.pre_save(obj, True)
        if value is None and field.null:
            continue
        columns.append(field.column)
        values.append(field.get_db_prep_save(value, connection))
    return tuple(columns), values


def _saved(obj, pk) -> None:
    obj.pk = pk
    obj._state.adding = False
    obj._state.db = connection.alias


def insert(cursor, objs: list) -> None:
    """INSERT new instances of one model (setting the same columns) in one statement and set
    their pks, as `save()` and `bulk_create()` would."""
    qn = connection.ops.quote_name
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


# --- PostgreSQL: the whole intake in one statement ----------------------------------------


# Columns of the request and of its event that the statement fills in itself.
_FROM_ORDER = ("order_id", "customer_id", "currency", "amount_requested")
_FROM_REQUEST = ("request_id",)


def _is_fresh_default(field) -> bool:
    """Whether the field's default is a new empty dict or list each time (JSON fields)."""
    return field.default in (dict, list)


@cache
def _defaults(model) -> tuple[tuple[str, object], ...]:
    """(attname, default) of each of the model's concrete fields, in column order: the
    constant, or the field itself when its default is made each time (a new dict, the time)."""
    return tuple(
        (f.attname, f if f.has_default() and callable(f.default) else f.get_default()) for f in model._meta.concrete_fields
    )


def _instance(model, values: dict):
    """The saved instance whose given fields are `values` (by attname, the pk included) and
    every other field its default, as `Model(**values)` would make it, but through the
    positional path that loading a row takes: a quarter of the cost."""
    return model.from_db(
        connection.alias,
        _attnames(model),
        [
            values[name] if name in values else default.get_default() if isinstance(default, Field) else default
            for name, default in _defaults(model)
        ],
    )


@cache
def _request_template(vendor: str, given: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...], tuple]:
    """(columns, their SQL values, the fields bound) of a new request's row but for
    `_FROM_ORDER`: a placeholder for each field in `given` (attnames), bound per request in
    the order of the fields returned; for every other field its default, written into the
    statement once as a literal (NULL columns are left out). A default that is not a
    constant (the time now) must be given."""
    from psycopg import sql

    connection.ensure_connection()
    columns, values, bound = [], [], []
    for field in _fields(RefundRequest):
        if field.attname in given:
            columns.append(field.column)
            values.append("%s")
            bound.append(field)
            continue
        if field.attname in _FROM_ORDER:
            continue
        if getattr(field, "auto_now", False) or (
            field.has_default() and callable(field.default) and not _is_fresh_default(field)
        ):
            raise ValueError(f"RefundRequest.{field.name} has no constant default: give it.")
        value = field.get_db_prep_save(field.get_default(), connection)
        if value is None and field.null:
            continue
        columns.append(field.column)
        values.append(sql.Literal(value).as_string(connection.connection))
    return tuple(columns), tuple(values), tuple(bound)


@cache
def _schema_drift(what: str) -> ImproperlyConfigured:
    """The hand-written intake statement names columns; a model change it does not know of
    must stop it with a sentence, not write a wrong row (and not only when asserts run)."""
    return ImproperlyConfigured(f"{what}: update the intake statement in refunds/intake.py to match the models.")


def _submit_sql(vendor: str, given: tuple[str, ...], event_columns: tuple[str, ...], with_task: bool) -> str:
    qn = connection.ops.quote_name
    order, line, refund, refund_line, event = (
        Order._meta,
        OrderLine._meta,
        RefundRequest._meta,
        RefundLine._meta,
        RefundEvent._meta,
    )
    col = lambda meta, name: qn(meta.get_field(name).column)  # noqa: E731
    ot, lt = qn(order.db_table), qn(line.db_table)
    oid, lid = col(order, "id"), col(line, "id")
    hq, ha, rq, ra = (col(line, f) for f in ("held_quantity", "held_amount", "refunded_quantity", "refunded_amount"))
    # The columns these expressions fill are those named in _FROM_ORDER and _FROM_REQUEST.
    by_column = {f.column: f.name for f in refund.concrete_fields}
    if [by_column[c] for c in _FROM_ORDER] != ["order", "customer", "currency", "amount_requested"]:
        raise _schema_drift("RefundRequest's columns filled from the order changed")
    if event.get_field("request").column != _FROM_REQUEST[0]:
        raise _schema_drift("RefundEvent's request column changed")
    filled = {
        "order_id": "(SELECT id FROM o)",
        "customer_id": "(SELECT customer_id FROM o)",
        "currency": "(SELECT currency FROM o)",
        # NULL, which the column refuses, unless every SKU asked for is on the order (for the
        # whole order: unless some line has something left).
        "amount_requested": "(SELECT CASE WHEN n = COALESCE(%s, n) AND n > 0 THEN amount END FROM total)",
    }
    if [f.name for f in refund_line.local_concrete_fields if not f.primary_key] != [
        "request",
        "order_line",
        "quantity",
        "amount",
    ]:
        raise _schema_drift("RefundLine's fields changed")
    request_columns, request_sql, _ = _request_template(vendor, given)
    request_cols = (*request_columns, *_FROM_ORDER)
    request_values = [*request_sql, *(filled[c] for c in _FROM_ORDER)]
    event_cols = (*event_columns, *_FROM_REQUEST)
    event_values = ["%s"] * len(event_columns) + ["(SELECT id FROM req)"]
    return (
        # The order's lock first, then its lines': the order every service locks in. Rows
        # locked after a wait are read as the waited-for transaction left them.
        f"WITH o AS (SELECT {oid} AS id, {col(order, 'customer')} AS customer_id, {col(order, 'currency')} AS currency"
        f" FROM {ot} WHERE {col(order, 'channel')} = %s AND {col(order, 'number')} = %s FOR NO KEY UPDATE),"
        # SKUs and quantities asked for; both NULL for the whole order.
        " asked AS (SELECT %s::text[] AS skus, %s::integer[] AS qtys, %s::text[] IS NULL AS whole),"
        " ask AS (SELECT a.* FROM asked, unnest(asked.skus, asked.qtys) WITH ORDINALITY AS a (sku, qty, n)),"
        f" l AS (SELECT line.{lid} AS id, line.{col(line, 'sku')} AS sku, line.{col(line, 'name')} AS name,"
        f" line.{col(line, 'quantity')} AS quantity, line.{col(line, 'line_total')} AS line_total,"
        f" line.{col(line, 'quantity')} - line.{rq} - line.{hq} AS left_qty,"
        f" line.{col(line, 'line_total')} - line.{ra} - line.{ha} AS left_amount"
        f" FROM {lt} line JOIN o ON line.{col(line, 'order')} = o.id"
        f" WHERE (SELECT whole FROM asked) OR line.{col(line, 'sku')} IN (SELECT sku FROM ask)"
        f" ORDER BY line.{lid} FOR NO KEY UPDATE OF line),"
        # What each line gives: the quantity asked for, or for the whole order all that is left
        # on every line that has some. refunds.services.holds.line_amount, in SQL: the last units
        # take whatever is left, so no cent is lost to rounding; ROUND on numeric rounds half
        # up, as the service does.
        " taken AS (SELECT l.*, COALESCE(ask.n, row_number() OVER (ORDER BY l.id)) AS n,"
        " COALESCE(ask.qty, l.left_qty) AS qty FROM l LEFT JOIN ask ON ask.sku = l.sku"
        " WHERE ask.sku IS NOT NULL OR ((SELECT whole FROM asked) AND l.left_qty > 0)),"
        " calc AS (SELECT id, sku, name, n, qty, CASE WHEN qty = left_qty THEN left_amount"
        " ELSE ROUND(line_total * qty / quantity, 2) END AS amount FROM taken),"
        " total AS (SELECT count(*) AS n, sum(amount) AS amount FROM calc),"
        # Asking for more than is left trips the lines' and the order's check constraints.
        f" held AS (UPDATE {lt} line SET {hq} = line.{hq} + calc.qty, {ha} = ROUND(line.{ha} + calc.amount, 2)"
        f" FROM calc WHERE line.{lid} = calc.id RETURNING line.{lid}),"
        f" held_order AS (UPDATE {ot} SET {col(order, 'held_total')} = ROUND({col(order, 'held_total')}"
        f" + (SELECT amount FROM total), 2) WHERE {oid} = (SELECT id FROM o) RETURNING {oid}),"
        f" req AS (INSERT INTO {qn(refund.db_table)} ({', '.join(qn(c) for c in request_cols)})"
        f" VALUES ({', '.join(request_values)}) RETURNING {col(refund, 'id')} AS id),"
        f" lines AS (INSERT INTO {qn(refund_line.db_table)}"
        f" ({', '.join(qn(f.column) for f in refund_line.local_concrete_fields if not f.primary_key)})"
        # In the order asked for, as the locked path inserts them.
        " SELECT req.id, calc.id, calc.qty, calc.amount FROM req CROSS JOIN calc ORDER BY calc.n"
        f" RETURNING {col(refund_line, 'id')} AS id, {col(refund_line, 'order_line')} AS order_line_id),"
        f" ev AS (INSERT INTO {qn(event.db_table)} ({', '.join(qn(c) for c in event_cols)})"
        f" VALUES ({', '.join(event_values)}) RETURNING {col(event, 'id')} AS id)"
        # The evaluation task, in django-q2's ORM broker table: queued when the request commits.
        + (
            f", task AS (INSERT INTO {qn(OrmQ._meta.db_table)}"
            f" ({', '.join(qn(OrmQ._meta.get_field(f).column) for f in ('key', 'payload', 'lock'))})"
            f" SELECT %s, %s, now() FROM req RETURNING {qn(OrmQ._meta.pk.column)})"
            if with_task
            else ""
        )
        + " SELECT (SELECT id FROM req), (SELECT id FROM ev), (SELECT count(*) FROM held), (SELECT count(*) FROM held_order),"
        " o.id, o.customer_id, o.currency, calc.id, calc.sku, calc.name, calc.qty, calc.amount, lines.id"
        " FROM o CROSS JOIN calc JOIN lines ON lines.order_line_id = calc.id ORDER BY calc.n"
    )


def submit(
    cursor,
    *,
    channel_id: int,
    number: str,
    lines: list[tuple[str, int]] | None,
    refund: dict,
    event,
    task: tuple[str, str] | None = None,
) -> tuple[RefundRequest, list[RefundLine]]:
    """The whole intake in one statement (PostgreSQL): lock the order and the lines asked
    for, work out each line's amount as `refunds.services.holds.line_amount` does, hold them on
    the lines and the order, and insert the request, its lines, `event` and `task` (queue
    key, signed package: a row of django-q2's ORM broker, from `config.q2.task_row`); return
    the request and its lines as saved.

    `refund` holds the request's own values by attname (a `%s` each in the statement); its
    order, customer, currency and amount come from the order here, and every other field is
    its default (see `_request_template`). `lines` are (SKU, quantity), each SKU once and
    every quantity at least 1, or None for all that is left on the order. Whatever is wrong
    (no such order or SKU, more asked than is left, the key already used) trips a
    constraint: the statement writes nothing and raises IntegrityError, and the caller takes
    the locked path, which says what was wrong."""
    given = tuple(refund)
    event_columns, event_values = _row(event, skip=_FROM_REQUEST)
    skus = None if lines is None else [sku for sku, _ in lines]
    *_, bound = _request_template(connection.vendor, given)
    params = [
        channel_id,
        number,
        skus,
        None if lines is None else [qty for _, qty in lines],
        skus,
        *(field.get_db_prep_save(refund[field.attname], connection) for field in bound),
        None if lines is None else len(lines),
        *event_values,
        *(task or ()),
    ]
    cursor.execute(_submit_sql(connection.vendor, given, event_columns, task is not None), params)
    rows = cursor.fetchall()
    if not rows or any(row[2] != len(rows) or row[3] != 1 for row in rows):  # pragma: no cover - constraints refuse first
        raise AssertionError("the intake statement wrote less than it asked for")
    refund_id, event_id, _, _, order_id, customer_id, currency = rows[0][:7]
    order = _loaded(
        Order,
        {"id": order_id, "channel_id": channel_id, "number": number, "customer_id": customer_id, "currency": currency},
    )
    saved = _instance(
        RefundRequest,
        {
            **refund,
            "id": refund_id,
            "order_id": order_id,
            "customer_id": customer_id,
            "currency": currency,
            "amount_requested": sum((row[11] for row in rows), Decimal("0.00")),
        },
    )
    saved.order = order
    refund_lines = []
    for *_, line_id, sku, name, qty, amount, refund_line_id in rows:
        order_line = _loaded(OrderLine, {"id": line_id, "order_id": order_id, "sku": sku, "name": name})
        refund_line = _instance(
            RefundLine,
            {"id": refund_line_id, "request_id": refund_id, "order_line_id": line_id, "quantity": qty, "amount": amount},
        )
        refund_line.request, refund_line.order_line = saved, order_line
        refund_lines.append(refund_line)
    event.request = saved
    _saved(event, event_id)
    return saved, refund_lines
