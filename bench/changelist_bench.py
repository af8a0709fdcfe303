"""Admin changelist response times at a million refund requests, per role's queue.

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/rd_finance_bench
    python bench/finance_bench.py seed --requests 1000000
    python bench/changelist_bench.py --repeat 5

Each role's user (made by `seed`) opens its queue through the Django test client, in this
process: one warm-up, then `--repeat` timed requests; the median, the slowest and the number
of SQL queries are printed, with the slowest query's EXPLAIN ANALYZE time when asked.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from finance_bench import setup  # noqa: E402

QUEUES = [
    ("support", "support queue (under review + awaiting customer)", "/admin/refunds/refundrequest/"),
    ("support", "support queue, filtered by channel + reason", None),
    ("warehouse", "warehouse queue (parcels expected / in transit)", "/admin/refunds/returnparcel/"),
    ("finance", "finance: payouts pending approval", "/admin/refunds/payout/"),
    ("finance", "finance: failed payouts", "/admin/refunds/payout/?state=failed"),
    ("finance", "finance: all payouts", "/admin/refunds/payout/?state=all"),
    ("finance", "finance: payout batches", "/admin/refunds/payoutbatch/"),
    ("finance", "finance: daily reconciliation, 30 days", "/admin/refunds/payout/reconciliation/?start={d30}&end={today}"),
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--explain", action="store_true", help="print the slowest query of each page")
    args = parser.parse_args()
    connection = setup()
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from orders.models import Channel

    today = timezone.localdate()
    channel = Channel.objects.order_by("pk").first()
    users = {u.username: u for u in get_user_model().objects.filter(username__startswith="bench-")}
    with connection.cursor() as c:
        c.execute("SELECT count(*) FROM refunds_refundrequest")
        n_requests = c.fetchone()[0]
    print(json.dumps({"requests": n_requests}))
    for role, label, url in QUEUES:
        if url is None:
            url = f"/admin/refunds/refundrequest/?channel__id__exact={channel.pk}&reason__exact=not_as_described"
        url = url.format(today=today, d30=today - timedelta(days=30))
        client = Client()
        client.force_login(users[f"bench-{role}"])
        response = client.get(url)  # warm-up (and the check that the page works)
        assert response.status_code == 200, (url, response.status_code)
        times = []
        for _ in range(args.repeat):
            with CaptureQueriesContext(connection) as ctx:
                t0 = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - t0) * 1000)
        slowest = max(ctx.captured_queries, key=lambda q: float(q["time"]))
        out = {
            "role": role,
            "page": label,
            "url": url,
            "median_ms": round(statistics.median(times)),
            "max_ms": round(max(times)),
            "queries": len(ctx.captured_queries),
            "slowest_query_ms": round(float(slowest["time"]) * 1000, 1),
        }
        if args.explain:
            out["slowest_sql"] = slowest["sql"][:400]
        print(json.dumps(out))


if __name__ == "__main__":
    main()
