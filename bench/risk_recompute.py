"""Full risk recompute over a large population (run by hand, PostgreSQL only).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rd_risk_bench \\
        python bench/risk_recompute.py --customers 1000000 --orders-per-customer 5

Generates the data with set-based SQL (generate_series) the first time, in the dedicated
bench database, then times `risk.services.recompute_all()` (the nightly schedule's work).
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

GENERATE = """
INSERT INTO orders_channel (name, kind, is_active, created_at)
VALUES ('bench', 'web_store', true, now()) ON CONFLICT (name) DO NOTHING;

INSERT INTO orders_customer (channel_id, external_id, name, phone, email, language, sms_opt_out, created_at)
SELECT (SELECT id FROM orders_channel WHERE name = 'bench'), 'B' || g, '',
       -- every 200th customer shares a phone with the two before it (linked accounts)
       '+86' || (13000000000 + CASE WHEN g %% 200 = 0 THEN g - 2 WHEN g %% 200 = 199 THEN g - 1 ELSE g END),
       '', 'zh-hans', false, now() - (g %% 900) * interval '1 day'
FROM generate_series(1, %(customers)s) AS g;

INSERT INTO orders_address (customer_id, name, phone, line1, city, postcode, country, fingerprint, created_at)
SELECT c.id, '', '', c.external_id || ' Road', '', '', 'CN',
       md5(CASE WHEN c.id %% 150 = 0 THEN 'shared' || (c.id / 1000) ELSE c.external_id END), c.created_at
FROM orders_customer c WHERE c.external_id LIKE 'B%%';

INSERT INTO orders_order (channel_id, number, customer_id, currency, placed_at, state, shipping_address_id,
                          shipping_fee, paid_total, refunded_total, held_total, paid_at, created_at, updated_at)
SELECT c.channel_id, c.external_id || '-' || k, c.id, 'CNY', now() - ((c.id * 7 + k * 13) %% 180) * interval '1 day',
       'delivered', a.id, 0, 100.00, CASE WHEN (c.id + k) %% 9 = 0 THEN 100.00 ELSE 0 END, 0, now(), now(), now()
FROM orders_customer c JOIN orders_address a ON a.customer_id = c.id
CROSS JOIN generate_series(1, %(per)s) AS k
WHERE c.external_id LIKE 'B%%';

INSERT INTO orders_orderline (order_id, sku, name, quantity, unit_price, line_total,
                              refunded_quantity, refunded_amount, held_quantity, held_amount)
SELECT o.id, 'S', '', 4, 25.00, 100.00, CASE WHEN o.refunded_total > 0 THEN 4 ELSE 0 END, o.refunded_total, 0, 0
FROM orders_order o WHERE o.number LIKE 'B%%';

INSERT INTO refunds_refundrequest (channel_id, idempotency_key, body_fingerprint, order_id, customer_id, kind,
  requested_kind, reason, refund_method, customer_note, state, currency, amount_requested, amount_paid, evidence,
  rule_trace, risk_level, risk_signals, decided_by, decision_reason, escalation_reason, requires_second_review,
  verdict, state_changed_at, created_at, updated_at)
SELECT o.channel_id, 'bench-' || o.id, '', o.id, o.customer_id, 'return_and_refund', 'return_and_refund',
       CASE WHEN o.id %% 5 = 0 THEN 'not_received' ELSE 'size_fit' END, 'original_payment', '', 'refunded', 'CNY',
       100.00, 100.00, '{}', '[]', '', '[]', '', '', '', false, '', o.placed_at + interval '5 days',
       o.placed_at + interval '5 days', now()
FROM orders_order o WHERE o.number LIKE 'B%%' AND o.refunded_total > 0;

INSERT INTO orders_addresschange (order_id, customer_id, old_address_id, new_address_id, changed_at)
SELECT o.id, o.customer_id, o.shipping_address_id, o.shipping_address_id, o.placed_at + interval '1 hour'
FROM orders_order o WHERE o.number LIKE 'B%%' AND o.id %% 50 = 0;
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders-per-customer", type=int, default=5)
    parser.add_argument("--skip-recompute", action="store_true", help="only time scoring single requests")
    parser.add_argument("--score-samples", type=int, default=300)
    args = parser.parse_args()
    assert connection.vendor == "postgresql", "PostgreSQL only"
    assert connection.settings_dict["NAME"].endswith("bench"), "run this on a dedicated *_bench database"
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM orders_customer WHERE external_id LIKE 'B%%'")
        if cursor.fetchone()[0] == 0:
            started = time.monotonic()
            cursor.execute(GENERATE, {"customers": args.customers, "per": args.orders_per_customer})
            cursor.execute("ANALYZE")
            print(f"generated data in {time.monotonic() - started:.0f}s")
        for table in ("orders_customer", "orders_order", "orders_orderline", "refunds_refundrequest", "orders_addresschange"):
            cursor.execute(f"SELECT count(*) FROM {table}")
            print(f"{table}: {cursor.fetchone()[0]:,}")
    from risk import services
    from risk.models import RiskProfile, WatchlistEntry

    if not args.skip_recompute:
        for run in (1, 2):  # the first run inserts the profiles, the second updates them all
            started = time.monotonic()
            n = services.recompute_all()
            print(f"run {run}: recompute_all wrote {n:,} profiles in {time.monotonic() - started:.1f}s")
        print(f"profiles: {RiskProfile.objects.count():,}; watch-list entries: {WatchlistEntry.objects.count():,}")
    time_scoring(args.score_samples)


def time_scoring(samples: int) -> None:
    """What intake pays: `assess_customer` (incremental recompute of the customer and its
    linked accounts, patterns, score) on random customers of the big population."""
    import random
    import statistics

    from django.db import reset_queries, transaction
    from django.test.utils import CaptureQueriesContext

    from orders.models import Customer
    from risk import services

    ids = list(Customer.objects.filter(external_id__startswith="B").order_by("?").values_list("pk", flat=True)[:samples])
    timings, queries = [], set()
    for pk in ids:
        customer = Customer.objects.get(pk=pk)
        with transaction.atomic():
            with CaptureQueriesContext(connection) as ctx:
                started = time.perf_counter()
                services.assess_customer(customer=customer)
                timings.append((time.perf_counter() - started) * 1000)
            queries.add(len(ctx.captured_queries))
            transaction.set_rollback(True)  # leave the data as generated
        reset_queries()
    timings.sort()
    print(
        f"assess_customer on {len(ids)} random customers: median {statistics.median(timings):.1f} ms, "
        f"p95 {timings[int(len(timings) * 0.95) - 1]:.1f} ms, max {timings[-1]:.1f} ms; queries per call {sorted(queries)}"
    )
    random.seed(0)


if __name__ == "__main__":
    main()
