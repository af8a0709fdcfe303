"""Risk profiles, rewritten by one set-based statement.

`recompute(customer_ids=None)` runs a single `WITH … INSERT … SELECT … ON CONFLICT DO
UPDATE`: aggregates per customer (orders, lines, requests, address changes) and window
functions for identifiers shared between accounts. The same statement serves the full
recompute (no scope) and the incremental one (a handful of ids), so both always agree. It is
plain SQL that PostgreSQL and SQLite (≥ 3.24) both accept; nothing loops per customer.
"""

from datetime import timedelta

from django.db import connection
from django.utils import timezone

from refunds.models import DEFAULT_DISPUTE_REASONS, RefundRequest
from risk.models import RiskSettings

COLUMNS = [
    "customer_id",
    "orders_90d",
    "refunded_orders_90d",
    "requests_90d",
    "paid_amount_90d",
    "refund_amount_90d",
    "bulk_orders",
    "bulk_orders_mostly_returned",
    "distinct_addresses_30d",
    "address_changes_30d",
    "requests_24h",
    "requests_7d",
    "requests_total",
    "not_received_requests",
    "dispute_requests",
    "account_created_at",
    "first_order_at",
    "first_refund_at",
    "shared_phone_accounts",
    "shared_address_accounts",
    "abusive_verdicts",
    "computed_at",
]

# Units on an order before "buy many, refund most" can apply, and the share that came back.
BULK_UNITS = 3
MOSTLY_RETURNED_TENTHS = 7


def _in(ids: list[int] | None) -> str:
    # Ids are cast to int here, so inlining them cannot inject anything.
    return "(" + ",".join(str(int(i)) for i in ids) + ")" if ids else "(NULL)"


def build_sql(scope: list[int] | None) -> str:
    """The statement; `scope` limits it to those customers (None = everybody)."""
    ids = _in(scope)
    only = (lambda col: f" AND {col} IN {ids}") if scope is not None else (lambda col: "")
    disputes = ",".join(f"'{r}'" for r in (str(x) for x in DEFAULT_DISPUTE_REASONS))
    # Only int ids are inlined (see `_in`); every value is a parameter.
    phone_scope = f" AND phone IN (SELECT phone FROM orders_customer WHERE id IN {ids})" if scope is not None else ""  # noqa: S608
    fp_scope = (
        f" WHERE fingerprint IN (SELECT fingerprint FROM orders_address WHERE customer_id IN {ids})"  # noqa: S608
        if scope is not None
        else ""
    )
    withdrawn = RefundRequest.State.WITHDRAWN.value
    # Two intakes of linked customers upsert overlapping rows: taking them in id order means
    # one waits for the other instead of deadlocking. The full pass runs alone; no sort there.
    order = " ORDER BY c.id" if scope is not None else ""
    updates = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:])
    return f"""
WITH
o AS (
  SELECT o.customer_id,
    SUM(CASE WHEN o.placed_at >= %(rate_since)s THEN 1 ELSE 0 END) AS orders_90d,
    SUM(CASE WHEN o.placed_at >= %(rate_since)s THEN o.paid_total ELSE 0 END) AS paid_90d,
    SUM(CASE WHEN o.placed_at >= %(rate_since)s THEN o.refunded_total + o.held_total ELSE 0 END) AS refund_90d,
    COUNT(DISTINCT CASE WHEN o.placed_at >= %(churn_since)s THEN a.fingerprint END) AS addresses_30d,
    MIN(o.placed_at) AS first_order_at
  FROM orders_order o LEFT JOIN orders_address a ON a.id = o.shipping_address_id
  WHERE 1 = 1{only("o.customer_id")}
  GROUP BY o.customer_id
),
per_order AS (
  SELECT o.customer_id, o.id, SUM(l.quantity) AS units, SUM(l.refunded_quantity + l.held_quantity) AS back
  FROM orders_order o JOIN orders_orderline l ON l.order_id = o.id
  WHERE 1 = 1{only("o.customer_id")}
  GROUP BY o.customer_id, o.id
),
bulk AS (
  SELECT customer_id,
    SUM(CASE WHEN units >= {BULK_UNITS} THEN 1 ELSE 0 END) AS bulk_orders,
    SUM(CASE WHEN units >= {BULK_UNITS} AND back * 10 >= units * {MOSTLY_RETURNED_TENTHS} THEN 1 ELSE 0 END) AS mostly_returned
  FROM per_order GROUP BY customer_id
),
r AS (
  SELECT customer_id,
    SUM(CASE WHEN created_at >= %(rate_since)s THEN 1 ELSE 0 END) AS requests_90d,
    COUNT(DISTINCT CASE WHEN created_at >= %(rate_since)s AND state <> '{withdrawn}' THEN order_id END) AS orders_asked_90d,
    SUM(CASE WHEN created_at >= %(day_ago)s THEN 1 ELSE 0 END) AS requests_24h,
    SUM(CASE WHEN created_at >= %(week_ago)s THEN 1 ELSE 0 END) AS requests_7d,
    COUNT(*) AS requests_total,
    SUM(CASE WHEN reason = 'not_received' THEN 1 ELSE 0 END) AS not_received,
    SUM(CASE WHEN reason IN ({disputes}) THEN 1 ELSE 0 END) AS disputes,
    MIN(created_at) AS first_refund_at,
    SUM(CASE WHEN verdict = 'abusive' THEN 1 ELSE 0 END) AS abusive
  FROM refunds_refundrequest
  WHERE 1 = 1{only("customer_id")}
  GROUP BY customer_id
),
ac AS (
  SELECT customer_id, COUNT(*) AS changes
  FROM orders_addresschange
  WHERE changed_at >= %(churn_since)s{only("customer_id")}
  GROUP BY customer_id
),
ph AS (
  SELECT id AS customer_id, COUNT(*) OVER (PARTITION BY phone) - 1 AS others
  FROM orders_customer
  WHERE phone <> ''{phone_scope}
),
fp AS (SELECT DISTINCT customer_id, fingerprint FROM orders_address{fp_scope}),
fpn AS (
  SELECT customer_id, MAX(n) - 1 AS others
  FROM (SELECT customer_id, COUNT(*) OVER (PARTITION BY fingerprint) AS n FROM fp) AS shared
  GROUP BY customer_id
)
INSERT INTO risk_riskprofile ({", ".join(COLUMNS)})
SELECT c.id,
  COALESCE(o.orders_90d, 0), COALESCE(r.orders_asked_90d, 0), COALESCE(r.requests_90d, 0),
  COALESCE(o.paid_90d, 0), COALESCE(o.refund_90d, 0),
  COALESCE(bulk.bulk_orders, 0), COALESCE(bulk.mostly_returned, 0),
  COALESCE(o.addresses_30d, 0), COALESCE(ac.changes, 0),
  COALESCE(r.requests_24h, 0), COALESCE(r.requests_7d, 0), COALESCE(r.requests_total, 0),
  COALESCE(r.not_received, 0), COALESCE(r.disputes, 0),
  c.created_at, o.first_order_at, r.first_refund_at,
  COALESCE(ph.others, 0), COALESCE(fpn.others, 0), COALESCE(r.abusive, 0), %(now)s
FROM orders_customer c
  LEFT JOIN o ON o.customer_id = c.id
  LEFT JOIN bulk ON bulk.customer_id = c.id
  LEFT JOIN r ON r.customer_id = c.id
  LEFT JOIN ac ON ac.customer_id = c.id
  LEFT JOIN ph ON ph.customer_id = c.id
  LEFT JOIN fpn ON fpn.customer_id = c.id
WHERE 1 = 1{only("c.id")}{order}
ON CONFLICT (customer_id) DO UPDATE SET {updates}
"""  # noqa: S608 - only ints and constants are inlined; values are parameters


def params(settings: RiskSettings, now) -> dict:
    adapt = connection.ops.adapt_datetimefield_value
    return {
        "rate_since": adapt(now - timedelta(days=settings.rate_window_days)),
        "churn_since": adapt(now - timedelta(days=settings.churn_window_days)),
        "day_ago": adapt(now - timedelta(hours=24)),
        "week_ago": adapt(now - timedelta(days=7)),
        "now": adapt(now),
    }


def linked_customers(customer_id: int) -> list[int]:
    """The customer and every account sharing its phone or an address: their counts move together."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT %(id)s
            UNION SELECT c2.id FROM orders_customer c1 JOIN orders_customer c2 ON c2.phone = c1.phone
              WHERE c1.id = %(id)s AND c1.phone <> ''
            UNION SELECT a2.customer_id FROM orders_address a1 JOIN orders_address a2 ON a2.fingerprint = a1.fingerprint
              WHERE a1.customer_id = %(id)s
            """,
            {"id": int(customer_id)},
        )
        return sorted(row[0] for row in cursor.fetchall())


def recompute(*, customer_ids: list[int] | None = None, settings: RiskSettings | None = None, now=None) -> int:
    """Rewrite the profiles of `customer_ids` (or of everybody) from the source tables."""
    settings = settings or RiskSettings.current()
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(build_sql(customer_ids), params(settings, now))
        return cursor.rowcount  # -1 on SQLite, which does not count rows of an upsert with a CTE
