"""Finance benchmarks, run by hand against a dedicated PostgreSQL database (never a test one).

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/rd_finance_bench
    python manage.py migrate
    python bench/finance_bench.py seed --requests 1000000     # set-based, a few minutes
    python bench/finance_bench.py bulk-approve --n 10000     # service, then the admin action
    python bench/finance_bench.py export --n 100000          # CSV and XLSX, each in a fresh process

`seed` fills channels, customers, orders, refund requests in every state, return parcels and
payouts with `INSERT ... SELECT generate_series`, so a million rows take minutes, not hours.
Figures go to docs/benchmarks.md (## Finance).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/rd_finance_bench")


def setup():
    import django

    django.setup()
    from django.db import connection

    name = connection.settings_dict["NAME"]
    if connection.vendor != "postgresql" or not name.endswith("_bench"):
        sys.exit(f"refusing to run on {connection.vendor}:{name}; use a database whose name ends in _bench")
    return connection


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- seed ----------------------------------------------------------------------------------

# Out of every 100 requests: which state. The rest are refunded.
STATES = [
    (0, 2, "under_review"),
    (2, 3, "awaiting_customer"),
    (3, 5, "awaiting_return"),
    (5, 6, "return_in_transit"),
    (6, 8, "ready_for_payout"),
    (8, 10, "rejected"),
]


def _state_case(expr: str) -> str:
    whens = " ".join(f"WHEN {expr} >= {lo} AND {expr} < {hi} THEN '{state}'" for lo, hi, state in STATES)
    return f"CASE {whens} ELSE 'refunded' END"


def seed(n_requests: int) -> None:
    connection = setup()
    from django.contrib.auth.models import Group

    from tests.factories import UserFactory

    n_customers = max(n_requests // 10, 1)
    t0 = time.perf_counter()
    with connection.cursor() as c:
        c.execute(
            "TRUNCATE refunds_refundevent, refunds_payout, refunds_payoutbatch, refunds_returnparcel, refunds_inspection,"
            " refunds_refundline, refunds_refundrequest, orders_orderline, orders_payment, orders_shipment,"
            " orders_orderevent, orders_order, orders_customer, orders_channel CASCADE"
        )
        c.execute(
            "INSERT INTO orders_channel (name, kind, is_active, created_at)"
            " SELECT 'bench-' || g, 'web_store', true, now() FROM generate_series(1, 3) g"
        )
        c.execute("SELECT min(id) FROM orders_channel")
        ch0 = c.fetchone()[0]
        c.execute(
            "INSERT INTO orders_customer (channel_id, external_id, name, phone, email, language, sms_opt_out, created_at)"
            f" SELECT {ch0} + g % 3, 'B-' || g, 'Customer ' || g, '+86138' || lpad(g::text, 8, '0'), '', 'zh-hans', false, now()"
            f" FROM generate_series(1, {n_customers}) g"
        )
        c.execute("SELECT min(id) FROM orders_customer")
        cu0 = c.fetchone()[0]
        # One order per request; the customer's channel is the order's channel.
        c.execute(
            "INSERT INTO orders_order (channel_id, number, customer_id, currency, placed_at, state, shipping_fee,"
            " paid_total, refunded_total, held_total, paid_at, created_at, updated_at)"
            f" SELECT {ch0} + (g % {n_customers}) % 3, 'BO-' || g, {cu0} + g % {n_customers}, 'CNY',"
            " now() - (g % 365) * interval '1 day', 'delivered', 0, 100.00, 0, 0, now() - (g % 365) * interval '1 day', now(), now()"
            f" FROM generate_series(0, {n_requests - 1}) g"
        )
        c.execute("SELECT min(id) FROM orders_order")
        o0 = c.fetchone()[0]
        state = _state_case(f"(o.id - {o0}) % 100")
        reasons = "(ARRAY['not_received','shipping_delay','damaged','wrong_item','not_as_described','used_goods','size_fit','changed_mind','quality_issue','other'])"
        c.execute(
            "INSERT INTO refunds_refundrequest (channel_id, idempotency_key, body_fingerprint, order_id, customer_id, kind,"
            " requested_kind, reason, refund_method, customer_note, state, currency, amount_requested, amount_approved,"
            " amount_paid, evidence, rule_trace, risk_score, risk_level, risk_signals, decided_by, decision_reason,"
            " escalation_reason, requires_second_review, verdict, state_changed_at, created_at, updated_at)"
            " SELECT o.channel_id, 'bench-' || o.id, '', o.id, o.customer_id,"
            " CASE WHEN o.id % 2 = 0 THEN 'return_and_refund' ELSE 'refund_only' END,"
            " CASE WHEN o.id % 2 = 0 THEN 'return_and_refund' ELSE 'refund_only' END,"
            f" {reasons}[1 + o.id % 10], 'original_payment', '', {state}, 'CNY', 10 + (o.id % 90), 10 + (o.id % 90),"
            " 0, '{}'::jsonb, '[]'::jsonb, o.id % 100, 'low', '[]'::jsonb, '', '', 'dispute reason: goes to a person', false, '',"
            " o.placed_at + interval '5 days', o.placed_at + interval '4 days', now()"
            " FROM orders_order o"
        )
        # Parcels for requests that were approved with a return (awaiting, in transit, or done).
        c.execute(
            "INSERT INTO refunds_returnparcel (request_id, return_code, address, deadline, carrier, tracking_number,"
            " received_at, created_at)"
            " SELECT r.id, lpad(r.id::text, 12, '0'), 'bench', r.created_at + interval '14 days', 'sf',"
            " CASE WHEN r.state = 'awaiting_return' THEN '' ELSE 'SFR' || r.id END,"
            " CASE WHEN r.state IN ('awaiting_return', 'return_in_transit') THEN NULL ELSE r.created_at + interval '7 days' END,"
            " r.created_at + interval '1 day'"
            " FROM refunds_refundrequest r"
            " WHERE r.kind = 'return_and_refund' AND r.state IN ('awaiting_return', 'return_in_transit', 'ready_for_payout', 'refunded')"
        )
        c.execute(
            "INSERT INTO refunds_payout (request_id, method, amount, currency, state, idempotency_key, attempts,"
            " gateway_reference, error, failure_permanent, status_checks, status_answer, created_at, updated_at,"
            " succeeded_at)"
            " SELECT r.id, 'original_payment', r.amount_requested, 'CNY',"
            " CASE WHEN r.state = 'ready_for_payout' THEN 'pending_approval' ELSE 'succeeded' END,"
            " gen_random_uuid(), CASE WHEN r.state = 'refunded' THEN 1 ELSE 0 END,"
            " CASE WHEN r.state = 'refunded' THEN 'GW-' || r.id ELSE '' END, '', false, 0, '', r.state_changed_at, now(),"
            " CASE WHEN r.state = 'refunded' THEN r.state_changed_at + interval '1 hour' END"
            " FROM refunds_refundrequest r WHERE r.state IN ('ready_for_payout', 'refunded')"
        )
        c.execute("ANALYZE")
    for role in ("support", "warehouse", "finance"):
        UserFactory(username=f"bench-{role}", role=role)
    UserFactory(username="bench-finance-2", role="finance")
    assert Group.objects.filter(name="finance").exists()
    with connection.cursor() as c:
        c.execute(
            "SELECT (SELECT count(*) FROM refunds_refundrequest), (SELECT count(*) FROM refunds_returnparcel),"
            " (SELECT count(*) FROM refunds_payout), (SELECT count(*) FROM refunds_payout WHERE state = 'pending_approval')"
        )
        counts = c.fetchone()
    print(
        json.dumps(
            {
                "seconds": round(time.perf_counter() - t0, 1),
                "requests": counts[0],
                "parcels": counts[1],
                "payouts": counts[2],
                "pending": counts[3],
            }
        )
    )


# --- bulk approve --------------------------------------------------------------------------


def _reset_pending(n: int) -> list[int]:
    """Exactly `n` payouts pending approval (and no others), with no approval history."""
    from django.db import connection

    from refunds.models import Payout, PayoutBatch, RefundEvent

    with connection.cursor() as c:
        RefundEvent.objects.filter(action__in=["payout_approve", "payout_first_approval"]).delete()
        PayoutBatch.objects.all().delete()
        c.execute(
            "UPDATE refunds_payout SET state = 'succeeded', approved_at = NULL, approved_by_id = NULL,"
            " first_approved_by_id = NULL, first_approved_at = NULL, batch_id = NULL"
            " WHERE state IN ('pending_approval', 'approved')"
        )
        c.execute(
            "UPDATE refunds_payout SET state = 'pending_approval', succeeded_at = NULL WHERE id IN"
            " (SELECT p.id FROM refunds_payout p JOIN refunds_refundrequest r ON r.id = p.request_id"
            "  WHERE r.state IN ('ready_for_payout', 'refunded') ORDER BY p.id LIMIT %s)",
            [n],
        )
    return list(Payout.objects.filter(state="pending_approval").values_list("pk", flat=True))


def bulk_approve(n: int) -> None:
    setup()
    from django.contrib.auth import get_user_model
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from config.actors import Actor
    from refunds import services
    from refunds.models import Payout, RefundEvent

    User = get_user_model()
    user = User.objects.get(username="bench-finance")
    out = {}

    ids = _reset_pending(n)
    t0 = time.perf_counter()
    result = services.payout_approve_bulk(payout_ids=ids, actor=Actor.for_user(user))
    out["service_seconds"] = round(time.perf_counter() - t0, 2)
    assert len(result.approved) == n, (len(result.approved), len(result.skipped))
    assert RefundEvent.objects.filter(action="payout_approve").count() == n

    _reset_pending(n)
    client = Client()
    client.force_login(user)
    reset_queries()
    t0 = time.perf_counter()
    with CaptureQueriesContext(connection) as ctx:
        page_ids = list(
            Payout.objects.filter(state="pending_approval").order_by("created_at", "pk").values_list("pk", flat=True)[:100]
        )
        response = client.post(
            "/admin/refunds/payout/",
            {"action": "approve_selected", "_selected_action": page_ids, "index": 0, "select_across": 1},
        )
    out["admin_action_seconds"] = round(time.perf_counter() - t0, 2)
    out["admin_action_status"] = response.status_code
    out["admin_action_queries"] = len(ctx)
    out["approved_after_action"] = Payout.objects.filter(state="approved").count()
    out["events_after_action"] = RefundEvent.objects.filter(action="payout_approve").count()
    out["n"] = n
    _reset_pending(20_000)
    print(json.dumps(out))


# --- export ----------------------------------------------------------------------------------


def export_one(n: int, fmt: str) -> None:
    """One export in this (fresh) process: time, and peak RSS above the baseline."""
    setup()
    from refunds.resources import EXPORTERS, RefundRequestResource
    from refunds.selectors_finance import refund_export_list

    ids = refund_export_list().order_by("pk").values_list("pk", flat=True)
    last = ids[n - 1]
    qs = refund_export_list().filter(pk__lte=last).order_by("pk")
    base = rss_mib()
    t0 = time.perf_counter()
    response = EXPORTERS[fmt](RefundRequestResource(), qs, "bench")
    size = 0
    for chunk in response.streaming_content:  # what the client would receive
        size += len(chunk)
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "fmt": fmt,
                "rows": n,
                "seconds": round(seconds, 1),
                "bytes": size,
                "baseline_rss_mib": round(base, 1),
                "peak_rss_mib": round(peak_rss_mib(), 1),
                "peak_above_baseline_mib": round(peak_rss_mib() - base, 1),
            }
        )
    )


def export_naive(n: int) -> None:
    """For comparison: import-export's own Resource.export() (a whole tablib Dataset in memory)."""
    setup()
    from refunds.resources import RefundRequestResource
    from refunds.selectors_finance import refund_export_list

    qs = refund_export_list().order_by("pk")[:n]
    base = rss_mib()
    t0 = time.perf_counter()
    data = RefundRequestResource().export(qs).export("csv")
    print(
        json.dumps(
            {
                "fmt": "csv via import-export Resource.export() (whole Dataset in memory)",
                "rows": n,
                "seconds": round(time.perf_counter() - t0, 1),
                "bytes": len(data),
                "peak_above_baseline_mib": round(peak_rss_mib() - base, 1),
            }
        )
    )


def export(n: int, naive: bool) -> None:
    for fmt in ("csv", "xlsx"):
        subprocess.run([sys.executable, __file__, "export-one", "--n", str(n), "--fmt", fmt], check=True)
    if naive:
        subprocess.run([sys.executable, __file__, "export-naive", "--n", str(n)], check=True)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("seed")
    p.add_argument("--requests", type=int, default=1_000_000)
    p = sub.add_parser("bulk-approve")
    p.add_argument("--n", type=int, default=10_000)
    p = sub.add_parser("export")
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--naive", action="store_true")
    p = sub.add_parser("export-one")
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--fmt", choices=["csv", "xlsx"], required=True)
    p = sub.add_parser("export-naive")
    p.add_argument("--n", type=int, default=100_000)
    args = parser.parse_args()
    if args.cmd == "seed":
        seed(args.requests)
    elif args.cmd == "bulk-approve":
        bulk_approve(args.n)
    elif args.cmd == "export":
        export(args.n, args.naive)
    elif args.cmd == "export-one":
        export_one(args.n, args.fmt)
    elif args.cmd == "export-naive":
        export_naive(args.n)


if __name__ == "__main__":
    main()
