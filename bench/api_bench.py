"""Throughput and latency of `POST /api/v1/refunds/` behind gunicorn on PostgreSQL, side by
side (same run, same server) with a bare DRF endpoint that inserts one row.

    python bench/api_bench.py --rounds 3 --seconds 10 --clients 16 --workers 4 --port 8110 [--redis URL]

It (re)creates the database `rd_api_bench` (or `--db`), migrates it, seeds one channel and enough
delivered orders that every request asks for a unit no other request holds, starts gunicorn
(sync workers) with `bench.bench_settings`, and runs `--clients` threads, each with its own
connection, against the bare endpoint and the refund endpoint in turns (`--rounds` turns of
`--seconds` each). Evaluation is not run inline (Q_SYNC off): its task is queued as in
production after commit, which is part of the measured request: written to the ORM broker's
table (the default), or pushed to Redis with `--redis`. No cluster runs
during the measurement.
"""

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB = "rd_api_bench"
PG = "postgres://postgres@127.0.0.1:5432"


def sh(*args, env=None):
    subprocess.run(args, check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)


def prepare(orders: int, env: dict, db: str = DB, history: int | None = None) -> str:
    """(Re)create `db` (env's DATABASE_URL must name it), seed it, and return the channel key.

    Besides the `orders` the requests ask for, the channel gets a history: `history` (by
    default half as many) older orders, each with a rejected refund request, its line and its
    event, as a merchant's database has. The request tables do not start the run empty: a
    PostgreSQL backend plans the foreign-key checks on a table once, and plans made while
    `refunds_refundrequest` is empty scan it whole at every check from then on, until the
    table is next analyzed (and this machine's server runs with autovacuum off)."""
    history = orders // 2 if history is None else history
    if subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"DROP DATABASE IF EXISTS {db}"]).returncode:
        sys.exit(f"Could not drop the bench's database {db}: is another run of this bench still using it?")
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {db}"], check=True)
    sh(sys.executable, "manage.py", "migrate", "-v0", env=env)
    seed = f"""
import secrets
from datetime import timedelta
from decimal import Decimal
from django.db import connection
from django.utils import timezone
from orders.models import Channel, ChannelKey, Customer, Order, OrderLine, Payment, Shipment
from refunds.models import RefundEvent, RefundLine, RefundRequest
key = "rd_bench_" + secrets.token_urlsafe(16)
ch = Channel.objects.create(name="bench", kind="web_store")
ChannelKey.objects.create(channel=ch, slot=1, key_hash=Channel.hash_key(key), key_prefix=key[:8])
now = timezone.now()
customers = Customer.objects.bulk_create([Customer(channel=ch, external_id=f"C-{{i}}", phone=f"+86139{{i:08d}}") for i in range({orders})])
orders = []
for i, c in enumerate(customers):
    o = Order(channel=ch, number=f"B-{{i}}", customer=c, placed_at=now - timedelta(days=5), paid_total=Decimal("39.80"),
              paid_at=now - timedelta(days=5), shipped_at=now - timedelta(days=4), delivered_at=now - timedelta(days=2))
    o.__dict__["state"] = "delivered"
    orders.append(o)
Order.objects.bulk_create(orders, batch_size=2000)
OrderLine.objects.bulk_create([OrderLine(order=o, sku=s, name=s, quantity=1, unit_price=Decimal("19.90"), line_total=Decimal("19.90")) for o in orders for s in ("SKU-1", "SKU-2")], batch_size=4000)
Payment.objects.bulk_create([Payment(order=o, method="alipay", reference=f"P-{{o.number}}", amount=Decimal("39.80"), paid_at=o.paid_at) for o in orders], batch_size=4000)
Shipment.objects.bulk_create([Shipment(order=o, channel=ch, carrier="sf", tracking_number=f"SF-{{o.number}}", shipped_at=o.shipped_at, delivered_at=o.delivered_at, last_status="delivered") for o in orders], batch_size=4000)
past = []
for i, c in enumerate(customers[:{history}]):
    o = Order(channel=ch, number=f"H-{{i}}", customer=c, placed_at=now - timedelta(days=60), paid_total=Decimal("19.90"),
              paid_at=now - timedelta(days=60), shipped_at=now - timedelta(days=59), delivered_at=now - timedelta(days=57))
    o.__dict__["state"] = "delivered"
    past.append(o)
Order.objects.bulk_create(past, batch_size=2000)
past_lines = OrderLine.objects.bulk_create([OrderLine(order=o, sku="SKU-1", name="SKU-1", quantity=1, unit_price=Decimal("19.90"), line_total=Decimal("19.90")) for o in past], batch_size=4000)
requests = []
for o in past:
    r = RefundRequest(channel=ch, idempotency_key=f"history-{{o.number}}", order=o, customer=o.customer, kind="refund_only",
                      requested_kind="refund_only", reason="changed_mind", currency="CNY", amount_requested=Decimal("19.90"),
                      decision_reason="Outside the return window.", created_at=now - timedelta(days=20),
                      state_changed_at=now - timedelta(days=19), rejected_at=now - timedelta(days=19))
    r.__dict__["state"] = "rejected"
    requests.append(r)
RefundRequest.objects.bulk_create(requests, batch_size=2000)
RefundLine.objects.bulk_create([RefundLine(request=r, order_line=line, quantity=1, amount=Decimal("19.90")) for r, line in zip(requests, past_lines)], batch_size=4000)
RefundEvent.objects.bulk_create([RefundEvent(request=r, action="submit", to_state="submitted", actor_kind="channel", actor_channel=ch, public=True, at=r.created_at) for r in requests], batch_size=4000)
with connection.cursor() as c:
    c.execute("CREATE TABLE bench_bare (id bigserial PRIMARY KEY, body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())")
    # As pgbench does after loading: the bulk-loaded rows get their hint bits and visibility
    # map now, not from the first requests (or an autovacuum racing them) during the run.
    c.execute("VACUUM ANALYZE")
print(key)
"""
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", seed], check=True, cwd=ROOT, env=env, capture_output=True, text=True
    ).stdout
    return out.strip().splitlines()[-1]


def wal_and_checkpoints(url: str) -> tuple[int, int]:
    """(WAL bytes written so far, checkpoints so far) of the whole server."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn, checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"
        ).fetchone()
    return int(row[0]), row[1]


TICK = os.sysconf("SC_CLK_TCK")


def parse_stat(stat: str) -> tuple[int, float]:
    """(parent pid, CPU seconds used so far) from the text of `/proc/<pid>/stat`."""
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


def cpu_readings(gunicorn_pid: int, db: str = DB) -> dict:
    """CPU seconds used so far by each process of interest, keyed by pid as (group, seconds):
    this script (the clients), gunicorn (master and workers), the PostgreSQL backends of
    `db`, and PostgreSQL's other processes (WAL writer, checkpointer, autovacuum, ...); and
    under "machine" the busy seconds of both cores (`/proc/stat`)."""
    readings: dict = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        pid, (ppid, seconds) = int(entry.name), parse_stat(stat)
        if pid == os.getpid():
            readings[pid] = ("clients", seconds)
        elif gunicorn_pid in (pid, ppid):
            readings[pid] = ("gunicorn", seconds)
        elif cmdline.startswith("postgres: "):
            readings[pid] = ("pg backends" if f" {db} " in cmdline else "pg other", seconds)
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in f.readline().split()[1:9])
    readings["machine"] = ("machine", (user + nice + system + irq + softirq + steal) / TICK)
    return readings


def cpu_used(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds by group between two `cpu_readings`. A process that started in between
    counts from zero; one that exited counts only in the machine's figure."""
    used = {"clients": 0.0, "gunicorn": 0.0, "pg backends": 0.0, "pg other": 0.0, "machine": 0.0}
    for pid, (group, seconds) in after.items():
        used[group] += seconds - before.get(pid, (group, 0.0))[1]
    return used


def run_phase(port, key, *, path, body_for, seconds, clients, key_prefix="bench"):
    """`clients` threads post for `seconds`; returns (latencies in ms, status counts)."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    counter = iter(range(10**9))
    counter_lock = threading.Lock()

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, codes = [], {}
        while time.monotonic() < stop_at:
            with counter_lock:
                n = next(counter)
            payload = json.dumps(body_for(n)).encode()
            headers = {
                "Authorization": f"Bearer {key}",
                "Content-Type": "application/json",
                "Idempotency-Key": f"{key_prefix}-{n}",
            }
            t0 = time.perf_counter()
            try:
                conn.request("POST", path, body=payload, headers=headers)
                resp = conn.getresponse()
                resp.read()
                code = resp.status
            except (http.client.HTTPException, OSError):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                code = 0
            mine.append((time.perf_counter() - t0) * 1000)
            codes[code] = codes.get(code, 0) + 1
        with lock:
            latencies.extend(mine)
            for k, v in codes.items():
                statuses[k] = statuses.get(k, 0) + v

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, statuses, next(counter)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10, help="length of each turn of each endpoint")
    parser.add_argument("--rounds", type=int, default=3, help="turns each endpoint takes, alternating")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--port", type=int, default=8110)
    parser.add_argument("--orders", type=int, default=40000)
    parser.add_argument(
        "--history", type=int, default=None, help="past orders with a rejected request each (default: half of --orders)"
    )
    parser.add_argument(
        "--conn-max-age",
        type=int,
        default=60,
        help="DB_CONN_MAX_AGE for gunicorn, as the README says to deploy (0: a connection per request)",
    )
    parser.add_argument("--redis", default="", help="use this Redis URL as the django-q2 broker instead of the ORM")
    parser.add_argument(
        "--db", default=DB, help="the database to (re)create for the run (engineers sharing a server each take their own)"
    )
    args = parser.parse_args()

    env = {
        **os.environ,
        "DATABASE_URL": f"{PG}/{args.db}",
        "DJANGO_SETTINGS_MODULE": "bench.bench_settings",
        "Q_CLUSTER_NAME": "rd-api-bench",
        "DEBUG": "0",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("Q_SYNC", None)
    env.pop("REDIS_URL", None)
    env["Q_BROKER"] = "orm"
    if args.redis:
        env.update(REDIS_URL=args.redis, Q_BROKER="redis")
    env["DB_CONN_MAX_AGE"] = str(args.conn_max_age)
    # The bench sends one channel's traffic far above the API's limits: the limits are raised
    # out of its way, but still counted on every request (the same cache work as in production).
    env.update(API_THROTTLE_CHANNEL_BURST="1000000/s", API_THROTTLE_CHANNEL_SUSTAINED="100000000/min")
    key = prepare(args.orders, env, db=args.db, history=args.history)
    gunicorn = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "-w",
            str(args.workers),
            "-b",
            f"127.0.0.1:{args.port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        for _ in range(100):
            try:
                c = http.client.HTTPConnection("127.0.0.1", args.port, timeout=2)
                c.request("GET", "/api/schema/")
                c.getresponse().read()
                break
            except OSError:
                time.sleep(0.2)

        def bare(n):
            return {"n": n, "note": "bare"}

        def refund(n):
            # Each measured request asks for SKU-1 of its own order: no two contend for a unit.
            sku = "SKU-1" if n < args.orders else "SKU-2"
            return {
                "order_number": f"B-{n % args.orders}",
                "kind": "refund_only",
                "reason": "size_fit",
                "lines": [{"sku": sku, "quantity": 1}],
            }

        # Warm both paths (imports, connections) before measuring.
        run_phase(args.port, key, path="/bench/bare/", body_for=bare, seconds=2, clients=args.clients)

        # Warm-up refunds ask for SKU-2 of the last orders, which the measured run never reaches.
        def warm(n):
            return {**refund(args.orders - 1 - n), "lines": [{"sku": "SKU-2", "quantity": 1}]}

        run_phase(args.port, key, path="/api/v1/refunds/", body_for=warm, seconds=1, clients=2, key_prefix="warm")
        # The two endpoints take turns (`--rounds` times each), so that a slow minute of the
        # shared host weighs on both alike; the figures are over all of an endpoint's turns.
        endpoints = (("bare DRF insert", "/bench/bare/", bare), ("POST /api/v1/refunds/", "/api/v1/refunds/", refund))
        runs = {
            name: {
                "lat": [],
                "statuses": {},
                "seconds": 0,
                "rps": [],
                "checkpoints": [],
                "wal_bytes": 0,
                "cpu": {},
                "cpu_per_turn": [],
            }
            for name, _, _ in endpoints
        }
        offset = 0
        for _ in range(args.rounds):
            for name, path, body in endpoints:
                start = offset if name != "bare DRF insert" else 0

                def numbered(n, body=body, start=start):
                    return body(start + n)

                before = wal_and_checkpoints(env["DATABASE_URL"])
                cpu_before = cpu_readings(gunicorn.pid, args.db)
                lat, statuses, n = run_phase(
                    args.port,
                    key,
                    path=path,
                    body_for=numbered,
                    seconds=args.seconds,
                    clients=args.clients,
                    key_prefix=f"bench-{start}",
                )
                if name != "bare DRF insert":
                    offset += n
                cpu = cpu_used(cpu_before, cpu_readings(gunicorn.pid, args.db))
                after = wal_and_checkpoints(env["DATABASE_URL"])
                run = runs[name]
                for group, seconds in cpu.items():
                    run["cpu"][group] = run["cpu"].get(group, 0.0) + seconds
                run["cpu_per_turn"].append({g: round(1000 * s / max(len(lat), 1), 2) for g, s in cpu.items()})
                run["wal_bytes"] += after[0] - before[0]
                run["checkpoints"].append(after[1] - before[1])
                run["lat"] += lat
                run["seconds"] += args.seconds
                run["rps"].append(round(len(lat) / args.seconds, 1))
                for code, count in statuses.items():
                    run["statuses"][code] = run["statuses"].get(code, 0) + count
        results = {}
        for name, run in runs.items():
            lat = run["lat"]
            results[name] = {
                "requests": len(lat),
                "statuses": run["statuses"],
                "rps": round(len(lat) / run["seconds"], 1),
                "rps_per_round": run["rps"],
                # A checkpoint during a turn makes the next write to each page log the whole
                # page; the refunds touch a new order's pages every time, the bare inserts
                # one page at the end of a table, so they are hit much harder.
                "checkpoints_per_round": run["checkpoints"],
                "wal_bytes_per_request": round(run["wal_bytes"] / max(len(run["lat"]), 1)),
                # Where the 2 cores went: CPU milliseconds per request, by process group.
                "cpu_ms_per_request": {group: round(1000 * s / max(len(lat), 1), 3) for group, s in run["cpu"].items()},
                "p50_ms": round(statistics.median(lat), 1),
                "p95_ms": round(pct(lat, 95), 1),
                "p99_ms": round(pct(lat, 99), 1),
            }
        print(json.dumps(results, indent=2))
        b, r = results["bare DRF insert"], results["POST /api/v1/refunds/"]
        with open("/proc/loadavg") as f:
            load = f.read().split()[:3]
        broker = "redis" if args.redis else "orm"
        print(
            f"broker={broker} workers={args.workers} clients={args.clients} rounds={args.rounds} x {args.seconds} s"
            f" load average={' '.join(load)}"
        )
        print("| endpoint | requests | req/s | p50 ms | p95 ms | p99 ms |\n|---|---|---|---|---|---|")
        for name, x in results.items():
            print(f"| {name} | {x['requests']} | {x['rps']} | {x['p50_ms']} | {x['p95_ms']} | {x['p99_ms']} |")
        for name, x in results.items():
            print(
                f"{name}: req/s per turn {x['rps_per_round']}, checkpoints per turn {x['checkpoints_per_round']},"
                f" WAL {x['wal_bytes_per_request']} bytes/request"
            )
            print(f"{name}: CPU ms/request {x['cpu_ms_per_request']}")
            for turn in runs[name]["cpu_per_turn"]:
                print(f"    per turn {turn}")
        print(f"refunds/bare throughput ratio: {r['rps'] / b['rps']:.2f}; refunds p95 {r['p95_ms']} ms")
    finally:
        os.killpg(gunicorn.pid, signal.SIGTERM)
        gunicorn.wait(timeout=20)


if __name__ == "__main__":
    main()
