"""Each role's admin queue at one million refund requests (run by hand, PostgreSQL only).

    createdb -h 127.0.0.1 -U postgres rd_support_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rd_support_bench \\
        python bench/support_changelists.py --requests 1000000

Generates the data with set-based SQL the first time (in the dedicated bench database),
then times each changelist through Django's test client in this process (the whole view:
session, permissions, filters, count, rows, template), median of 7 runs after one warm-up.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
# The seed below is one multi-statement script, which a server-side prepared statement
# (DB_SERVER_SIDE_BINDING, on by default) cannot hold: bind on the client for this script.
os.environ.setdefault("DB_SERVER_SIDE_BINDING", "0")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

GENERATE = """
INSERT INTO orders_channel (name, kind, is_active, created_at)
SELECT 'sbench-' || g, 'web_store', true, now() FROM generate_series(1, 6) AS g
ON CONFLICT (name) DO NOTHING;

INSERT INTO orders_customer (channel_id, external_id, name, phone, email, language, sms_opt_out, created_at)
SELECT (SELECT min(id) FROM orders_channel WHERE name LIKE 'sbench-%%'), 'SB' || g, 'Customer ' || g,
       '+86' || (13800000000 + g), '', 'zh-hans', false, now()
FROM generate_series(1, 20000) AS g;

INSERT INTO orders_order (channel_id, number, customer_id, currency, placed_at, state, shipping_fee, paid_total,
                          refunded_total, held_total, created_at, updated_at)
SELECT c.channel_id, 'SBO-' || c.id, c.id, 'CNY', now() - interval '20 days', 'delivered', 0, 1000, 0, 0, now(), now()
FROM orders_customer c WHERE c.external_id LIKE 'SB%%';

-- States roughly as a busy desk has them: most requests are finished, a tenth wait for a person.
INSERT INTO refunds_refundrequest (
    channel_id, idempotency_key, body_fingerprint, order_id, customer_id, kind, requested_kind, reason,
    refund_method, customer_note, state, currency, amount_requested, amount_paid, evidence, rule_trace,
    risk_score, risk_level, risk_signals, decided_by, decision_reason, escalation_reason, requires_second_review,
    verdict, state_changed_at, created_at, updated_at)
SELECT ch.ids[1 + g %% 6], 'sb-' || g, '', o.id, o.customer_id, 'return_and_refund', 'return_and_refund',
       (ARRAY['not_received','shipping_delay','damaged','wrong_item','not_as_described','used_goods','size_fit',
              'changed_mind','quality_issue','other'])[1 + g %% 10],
       'original_payment', '',
       CASE WHEN g %% 100 < 10 THEN 'under_review' WHEN g %% 100 < 15 THEN 'awaiting_customer'
            WHEN g %% 100 < 20 THEN 'awaiting_return' WHEN g %% 100 < 23 THEN 'return_in_transit'
            WHEN g %% 100 < 25 THEN 'received' WHEN g %% 100 < 28 THEN 'ready_for_payout'
            WHEN g %% 100 < 40 THEN 'rejected' ELSE 'refunded' END,
       'CNY', 10 + (g %% 500), 0, '{}'::jsonb, '[]'::jsonb, g %% 100, 'medium', '[]'::jsonb, '', '',
       CASE WHEN g %% 100 < 15 THEN '''Not as described'' is a dispute reason' ELSE '' END, false, '',
       now() - (g %% 2000) * interval '1 hour', now() - (1000000 - g) * interval '30 seconds', now()
FROM generate_series(1, %(requests)s) AS g
CROSS JOIN (SELECT array_agg(id ORDER BY id) AS ids FROM orders_channel WHERE name LIKE 'sbench-%%') AS ch
JOIN orders_order o ON o.number = 'SBO-' || ((SELECT min(id) FROM orders_customer WHERE external_id LIKE 'SB%%') + g %% 20000);

INSERT INTO refunds_returnparcel (request_id, return_code, address, deadline, carrier, tracking_number, created_at)
SELECT r.id, lpad(r.id::text, 12, '0'), 'Hangzhou', r.created_at + interval '14 days', '', '', r.state_changed_at
FROM refunds_refundrequest r WHERE r.state IN ('awaiting_return', 'return_in_transit', 'received');

INSERT INTO refunds_payout (request_id, method, amount, currency, state, idempotency_key, attempts, gateway_reference,
                            error, failure_permanent, status_checks, status_answer, created_at, updated_at)
SELECT r.id, 'original_payment', r.amount_requested, 'CNY',
       CASE WHEN r.id %% 7 = 0 THEN 'failed' ELSE 'pending_approval' END, gen_random_uuid(), 0, '',
       CASE WHEN r.id %% 7 = 0 THEN 'declined' ELSE '' END, false, 0, '', r.state_changed_at, now()
FROM refunds_refundrequest r WHERE r.state = 'ready_for_payout';
ANALYZE;
"""


def generate(requests: int) -> None:
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM refunds_refundrequest")
        if cur.fetchone()[0] >= requests:
            return
        started = time.perf_counter()
        cur.execute(GENERATE, {"requests": requests})
        print(f"generated {requests:,} requests in {time.perf_counter() - started:.0f} s", flush=True)


def time_get(client, url: str, runs: int = 7) -> tuple[float, int]:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    rows = len(response.context["cl"].result_list) if response.context and "cl" in response.context else -1
    return statistics.median(times), rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1_000_000)
    args = parser.parse_args()
    assert connection.vendor == "postgresql", "run against PostgreSQL"
    call_command("migrate", verbosity=0)
    generate(args.requests)

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import NoReverseMatch, reverse

    from orders.models import Channel

    setup_test_environment()  # lets the test client see the changelist's context (rows on the page)
    User = get_user_model()
    users = {}
    for role in ["support", "warehouse", "finance", "risk"]:
        user, _ = User.objects.get_or_create(username=f"bench-{role}", defaults={"is_staff": True})
        user.groups.set([Group.objects.get(name=role)])
        users[role] = user
    channel = Channel.objects.filter(name__startswith="sbench-").order_by("pk").first()
    requests_url = reverse("admin:refunds_refundrequest_changelist")
    parcels_url = reverse("admin:refunds_returnparcel_changelist")
    screens = [
        ("support", "queue (under review + awaiting customer), oldest first", requests_url),
        ("support", "queue, page 100", requests_url + "?p=100"),
        ("support", "queue filtered by channel", requests_url + f"?channel__id__exact={channel.pk}"),
        ("support", "queue filtered by reason", requests_url + "?reason=damaged"),
        ("support", "queue, older than a week", requests_url + "?age=gt7"),
        ("support", "search by request number", requests_url + "?q=RF-000500000&queue=all"),
        ("risk", "under review", requests_url + "?queue=under_review"),
        ("finance", "all requests", requests_url + "?queue=all"),
        ("warehouse", "parcels expected and in transit", parcels_url),
        ("warehouse", "parcels received, to inspect", parcels_url + "?queue=received"),
        ("warehouse", "search a return code", parcels_url + "?q=000000500004&queue=all"),
    ]
    try:
        payouts_url = reverse("admin:refunds_payout_changelist")
        screens += [
            ("finance", "payouts pending approval", payouts_url + "?state__exact=pending_approval"),
            ("finance", "payouts failed", payouts_url + "?state__exact=failed"),
        ]
    except NoReverseMatch:
        pass

    with connection.cursor() as cur:
        cur.execute("SELECT state, count(*) FROM refunds_refundrequest GROUP BY state ORDER BY 2 DESC")
        print("requests by state:", ", ".join(f"{s} {n:,}" for s, n in cur.fetchall()))
    print("| role | screen | median ms (7 runs) | rows on page |")
    print("|---|---|---|---|")
    for role, label, url in screens:
        client = Client()
        client.force_login(users[role])
        ms, rows = time_get(client, url)
        print(f"| {role} | {label} | {ms:.0f} | {rows} |", flush=True)


if __name__ == "__main__":
    main()
