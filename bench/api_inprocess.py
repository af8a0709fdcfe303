"""Cost of one `POST /api/v1/refunds/` and of one bare DRF insert, in one process, without
HTTP or other clients: what each request costs the CPU, free of the 2 cores' queueing noise.

    python bench/api_inprocess.py --requests 1000 [--profile refund|bare] [--reuse]

It prepares `rd_api_inprocess` as `bench/api_bench.py` prepares its database (unless
`--reuse`), then calls Django's WSGI handler directly with the same headers and bodies as
the HTTP bench: every middleware, authentication, parsing, the view, the service and the
commit run, the socket does not. Evaluation is queued after commit as in production (the
ORM broker unless `--redis`), and no cluster runs. It prints the mean milliseconds per
request and the SQL statements per request for both endpoints; `--profile` prints the
cProfile of one endpoint's measured requests, heaviest cumulative time first.
"""

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB = "rd_api_inprocess"


def environ(path: str, body: dict, key: str, idem: str) -> dict:
    payload = json.dumps(body).encode()
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(payload)),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "REMOTE_ADDR": "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_AUTHORIZATION": f"Bearer {key}",
        "HTTP_IDEMPOTENCY_KEY": idem,
        "wsgi.input": io.BytesIO(payload),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }


def prepared_key(orders: int, *, reuse: bool) -> str:
    """The channel key of `rd_api_inprocess`, which is (re)created and seeded with `orders`
    orders as `bench/api_bench.py` seeds its own, unless `reuse` and a previous run left it.
    The environment must already name the database (DATABASE_URL)."""
    from bench import api_bench

    key_file = Path(tempfile.gettempdir()) / f"{DB}.key"
    if reuse and key_file.exists():
        return key_file.read_text().strip()
    key = api_bench.prepare(orders, {**os.environ, "PYTHONPATH": str(ROOT)}, db=DB)
    key_file.write_text(key)
    return key


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--profile", choices=["refund", "bare"], default="")
    parser.add_argument("--orders", type=int, default=20000, help="orders to seed; each request takes an order of its own")
    parser.add_argument("--reuse", action="store_true", help="keep the database a previous run prepared")
    parser.add_argument("--timings", action="store_true", help="print the mean time of each SQL statement of the refund")
    parser.add_argument(
        "--plans", action="store_true", help="print how PostgreSQL planned each prepared statement (generic or custom)"
    )
    parser.add_argument("--redis", default="", help="queue to this Redis URL instead of the ORM broker")
    args = parser.parse_args()

    os.environ.update(
        {
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB}",
            "DJANGO_SETTINGS_MODULE": "bench.bench_settings",
            "Q_CLUSTER_NAME": "rd-api-inprocess",
            "DEBUG": "0",
            "DB_CONN_MAX_AGE": "60",
            # As in api_bench: the API's limits out of the way, still counted on every request.
            "API_THROTTLE_CHANNEL_BURST": "1000000/s",
            "API_THROTTLE_CHANNEL_SUSTAINED": "100000000/min",
        }
    )
    os.environ.pop("Q_SYNC", None)
    os.environ.pop("REDIS_URL", None)
    os.environ["Q_BROKER"] = "orm"
    if args.redis:
        os.environ.update(REDIS_URL=args.redis, Q_BROKER="redis")
    key = prepared_key(args.orders, reuse=args.reuse)

    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    from refunds.models import RefundRequest

    handler = WSGIHandler()
    run = f"{time.time_ns()}"
    start = RefundRequest.objects.count()

    def call(path, body, idem):
        status = []
        out = b"".join(handler(environ(path, body, key, idem), lambda s, h, *a: status.append(s)))
        if not status[0].startswith(("200", "201")):
            raise SystemExit(f"{path} answered {status[0]}: {out[:300]!r}")

    def refund(n):
        return {
            "order_number": f"B-{start + n}",
            "kind": "refund_only",
            "reason": "size_fit",
            "lines": [{"sku": "SKU-1", "quantity": 1}],
        }

    endpoints = {
        "bare": ("/bench/bare/", lambda n: {"n": n, "note": "bare"}),
        "refund": ("/api/v1/refunds/", refund),
    }
    # Warm both paths (imports, the connection, the broker) before measuring.
    for name, (path, body_for) in endpoints.items():
        for n in range(20):
            call(path, body_for(n), f"{run}-warm-{name}-{n}")
    offset = 20
    results = {}
    for name, (path, body_for) in endpoints.items():
        with CaptureQueriesContext(connection) as queries:
            call(path, body_for(offset), f"{run}-count-{name}")
        statements = len(queries)
        profiler = cProfile.Profile() if args.profile == name else None
        timings: dict[str, list[float]] = {}

        def timed(execute, sql, params, many, context, timings=timings):
            t = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                timings.setdefault(sql[:70], []).append(time.perf_counter() - t)

        wrapper = connection.execute_wrapper(timed) if args.timings and name == "refund" else contextlib.nullcontext()
        wrapper.__enter__()
        t0 = time.perf_counter()
        if profiler:
            profiler.enable()
        for n in range(offset + 1, offset + 1 + args.requests):
            call(path, body_for(n), f"{run}-{name}-{n}")
        if profiler:
            profiler.disable()
        elapsed = time.perf_counter() - t0
        wrapper.__exit__(None, None, None)
        for sql, times in timings.items():
            print(f"{1000 * sum(times) / args.requests:7.3f} ms/request  {len(times) / args.requests:4.1f}x  {sql}")
        reset_queries()
        results[name] = {"ms_per_request": round(1000 * elapsed / args.requests, 3), "statements": statements}
        if profiler:
            stream = io.StringIO()
            pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(45)
            profiler.dump_stats(Path(tempfile.gettempdir()) / f"{DB}-{name}.prof")
            print(stream.getvalue())
    print(json.dumps(results, indent=2))
    if args.plans:
        # A prepared statement on a generic plan is planned once; on custom plans, at every run.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT generic_plans, custom_plans, left(regexp_replace(statement, '\\s+', ' ', 'g'), 90)"
                " FROM pg_prepared_statements ORDER BY generic_plans + custom_plans DESC"
            )
            for generic, custom, statement in cursor.fetchall():
                print(f"generic {generic:6}  custom {custom:6}  {statement}")
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(
        f"refund/bare cost ratio: {results['refund']['ms_per_request'] / results['bare']['ms_per_request']:.2f} "
        f"(broker={'redis' if args.redis else 'orm'}, load average {load})"
    )


if __name__ == "__main__":
    main()
