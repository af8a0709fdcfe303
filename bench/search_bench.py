"""The staff search (/admin/search/ and the requests list's search box) at N refund requests
(run by hand, PostgreSQL only).

    createdb -h 127.0.0.1 -U postgres rd_search_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rd_search_bench \\
        python bench/search_bench.py --requests 1000000

Seeds with set-based SQL the first time (one customer per four requests, named from a list
of Chinese names in pinyin, one order and one outbound shipment per request, a return parcel
for a fifth of them, orders numbered with zero padding), then times each search through
Django's test client in this process (the whole view: session, permissions, queries,
template), median of 7 runs after one warm-up.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
# The seed is one multi-statement script, which a server-side prepared statement can't hold.
os.environ.setdefault("DB_SERVER_SIDE_BINDING", "0")

import django  # noqa: E402
import django.conf  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

GENERATE = """
INSERT INTO orders_channel (name, kind, is_active, created_at, key_prefix)
VALUES ('search-bench', 'web_store', true, now(), '') ON CONFLICT (name) DO NOTHING;

INSERT INTO orders_customer (channel_id, external_id, name, phone, email, language, sms_opt_out, created_at)
SELECT ch.id, 'SC' || g,
       (ARRAY['Wang','Li','Zhang','Liu','Chen','Yang','Huang','Zhao','Wu','Zhou','Xu','Sun','Ma','Zhu','Hu',
              'Guo','He','Gao','Lin','Luo'])[1 + g %% 20] || ' ' ||
       (ARRAY['Wei','Fang','Na','Min','Jing','Li','Qiang','Lei','Jun','Yang','Yong','Yan','Jie','Tao','Ming',
              'Chao','Xiu','Xia','Hong','Ping','Gang','Hui','Bo','Lan','Jian'])[1 + (g / 20) %% 25]
       || CASE WHEN g %% 7 = 0 THEN '' ELSE ' ' || g END,
       '+86' || (13800000000 + g), 'c' || g || '@example.com', 'zh-hans', false, now()
FROM generate_series(1, %(customers)s) AS g, (SELECT id FROM orders_channel WHERE name = 'search-bench') AS ch;

INSERT INTO orders_order (channel_id, number, customer_id, currency, placed_at, state, shipping_fee, paid_total,
                          refunded_total, held_total, created_at, updated_at)
SELECT ch.id, lpad(g::text, 8, '0'), c0.id + g %% %(customers)s, 'CNY', now() - interval '20 days', 'delivered',
       0, 100, 0, 0, now(), now()
FROM generate_series(1, %(requests)s) AS g,
     (SELECT id FROM orders_channel WHERE name = 'search-bench') AS ch,
     (SELECT min(id) AS id FROM orders_customer WHERE external_id LIKE 'SC%%') AS c0;

INSERT INTO orders_shipment (order_id, carrier, tracking_number, last_status)
SELECT o.id, 'sf', 'SF' || o.number || '7', 'delivered' FROM orders_order o WHERE o.number ~ '^[0-9]{8}$';

INSERT INTO refunds_refundrequest (
    channel_id, idempotency_key, body_fingerprint, order_id, customer_id, kind, requested_kind, reason,
    refund_method, customer_note, state, currency, amount_requested, amount_paid, evidence, rule_trace,
    risk_score, risk_level, risk_signals, decided_by, decision_reason, escalation_reason, requires_second_review,
    verdict, state_changed_at, created_at, updated_at)
SELECT o.channel_id, 'sr-' || o.id, '', o.id, o.customer_id, 'return_and_refund', 'return_and_refund', 'damaged',
       'original_payment', '',
       CASE WHEN o.id %% 100 < 10 THEN 'under_review' WHEN o.id %% 100 < 15 THEN 'awaiting_customer'
            WHEN o.id %% 100 < 35 THEN 'awaiting_return' WHEN o.id %% 100 < 50 THEN 'rejected' ELSE 'refunded' END,
       'CNY', 50, 0, '{}'::jsonb, '[]'::jsonb, 10, 'low', '[]'::jsonb, '', '', '', false, '',
       now(), now() - (o.id %% 5000) * interval '1 hour', now()
FROM orders_order o WHERE o.number ~ '^[0-9]{8}$';

INSERT INTO refunds_returnparcel (request_id, return_code, address, deadline, carrier, tracking_number, created_at)
SELECT r.id, 'RC' || lpad(r.id::text, 10, '0'), 'Hangzhou', now() + interval '14 days', 'yto', 'YT' || r.id, now()
FROM refunds_refundrequest r WHERE r.state = 'awaiting_return';
ANALYZE;
"""


def generate(requests: int) -> None:
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM refunds_refundrequest")
        if cur.fetchone()[0] >= requests:
            return
        started = time.perf_counter()
        cur.execute(GENERATE, {"requests": requests, "customers": max(1, requests // 4)})
        print(f"generated {requests:,} requests in {time.perf_counter() - started:.0f} s", flush=True)


def time_get(client, url: str, params: dict, runs: int = 7) -> float:
    response = client.get(url, params)
    assert response.status_code == 200, (url, params, response.status_code)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url, params)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


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
    from django.urls import reverse

    from refunds.models import RefundRequest, ReturnParcel
    from refunds.selectors_search import staff_search

    User = get_user_model()
    users = {}
    for role in ["support", "finance"]:
        user, _ = User.objects.get_or_create(username=f"search-bench-{role}", defaults={"is_staff": True})
        user.groups.set([Group.objects.get(name=role)])
        users[role] = user
    middle = RefundRequest.objects.filter(state="refunded").order_by("pk")[args.requests // 4]
    parcel = ReturnParcel.objects.order_by("pk")[args.requests // 20]
    number = middle.order.number
    page, requests_list = reverse("staff_search"), reverse("admin:refunds_refundrequest_changelist")
    searches = [
        ("support", "request number (refunded)", page, middle.number),
        ("support", "order number, padded", page, number),
        ("support", "order number, unpadded", page, number.lstrip("0")),
        ("support", "customer name (shared by many)", page, "He Min"),
        ("support", "customer name, part", page, "Zhou Ming 4"),
        ("support", "phone, last four digits", page, "4321"),
        ("finance", "phone, whole", page, middle.customer.phone),
        ("finance", "e-mail", page, middle.customer.email),
        ("support", "outbound tracking number", page, f"SF{number}7"),
        ("support", "return code", page, parcel.return_code),
        ("support", "return tracking number", page, parcel.tracking_number),
        ("support", "nothing matches", page, "no such thing"),
        ("support", "requests list: request number, default queue", requests_list, middle.number),
        ("support", "requests list: order number, unpadded", requests_list, number.lstrip("0")),
    ]
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM refunds_refundrequest")
        total = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM orders_customer")
        print(f"{total:,} requests, {cur.fetchone()[0]:,} customers")
    print("| role | search | median ms (7 runs) | rows found |")
    print("|---|---|---|---|")
    for role, label, url, term in searches:
        client = Client()
        client.force_login(users[role])
        if role == "finance":  # finance signs in with a second factor: pass it as the verify page does
            import django_otp
            from django.http import HttpRequest
            from django_otp.plugins.otp_totp.models import TOTPDevice

            device, _ = TOTPDevice.objects.get_or_create(user=users[role], name="bench", defaults={"confirmed": True})
            fake = HttpRequest()
            fake.session, fake.user = client.session, users[role]
            django_otp.login(fake, device)
            fake.session.save()
            client.cookies[django.conf.settings.SESSION_COOKIE_NAME] = fake.session.session_key
        ms = time_get(client, url, {"q": term})
        rows = len(staff_search(term, user=users[role])) if url == page else "—"
        print(f"| {role} | {label} | {ms:.0f} | {rows} |", flush=True)


if __name__ == "__main__":
    main()
