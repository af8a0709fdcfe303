"""CPU per request of intake variants, A/B in one process: what a change saves, free of the
shared host's slow minutes (which move whole runs by up to a factor of 2).

    python bench/api_ab.py --blocks 8 --block 250 [--variants bare,orm,redis,new-serializer] [--reuse]

It prepares `rd_api_inprocess` as `bench/api_inprocess.py` does (unless `--reuse`) and
calls Django's WSGI handler directly. Each round runs a block of `--block` requests of every
variant, in a shuffled order; a block's cost is the CPU time of this process, of its
PostgreSQL backend and of Redis, divided by its requests. It prints each variant's median
over `--blocks` rounds (a first round only warms up). Variants:

- `bare`: the bare DRF insert (`bench/bare_urls.py`);
- `orm`: a refund POST as the product runs it, the task written to the ORM broker after commit;
- `redis`: the same with django-q2's Redis broker (`--redis`), the task pushed after commit;
- `new-serializer`: `orm`, but the body validated by a serializer made for each request,
  as DRF's `is_valid` is usually called (the product keeps one, `BoundValidator`).

Each refund asks for SKU-2 of an order no other request of the run asked for, from
`--start` on; the seeded database has `--orders` orders, so runs need fresh numbers.
"""

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--blocks", type=int, default=8)
    parser.add_argument("--block", type=int, default=250)
    parser.add_argument("--variants", default="bare,orm,redis,new-serializer")
    parser.add_argument("--orders", type=int, default=150000)
    parser.add_argument("--start", type=int, default=0, help="first order number this run asks for")
    parser.add_argument("--reuse", action="store_true", help="keep the database a previous run prepared")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/7")
    args = parser.parse_args()
    variants = args.variants.split(",")
    needed = args.start + (args.blocks + 1) * args.block * len(variants)
    if needed > args.orders:
        raise SystemExit(f"This run needs orders up to B-{needed}; seed more (--orders) or start lower (--start).")

    os.environ.update(
        {
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/rd_api_inprocess",
            "DJANGO_SETTINGS_MODULE": "bench.bench_settings",
            "Q_CLUSTER_NAME": "rd-api-inprocess",
            "DEBUG": "0",
            "DB_CONN_MAX_AGE": "60",
            "Q_BROKER": "orm",
            "REDIS_URL": args.redis,
        }
    )
    os.environ.pop("Q_SYNC", None)
    from bench.api_bench import parse_stat
    from bench.api_inprocess import environ, prepared_key

    key = prepared_key(args.orders, reuse=args.reuse)

    import django

    django.setup()
    import redis
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection
    from django_q.conf import Conf

    from config import q2
    from refunds.api import views

    bound = views.CREATE_BODY

    class NewSerializerPerRequest:
        def validate(self, data):
            serializer = views.RefundCreateSerializer(data=data)
            serializer.is_valid(raise_exception=True)
            return serializer.validated_data

    def product():
        Conf.ORM, Conf.REDIS = "default", None
        views.CREATE_BODY = bound

    def on_redis():
        product()
        Conf.ORM, Conf.REDIS = None, args.redis
        q2._brokers.clear()

    def new_serializer():
        product()
        views.CREATE_BODY = NewSerializerPerRequest()

    setups = {"bare": product, "orm": product, "redis": on_redis, "new-serializer": new_serializer}
    handler = WSGIHandler()
    run = time.time_ns()

    def call(path, body, idem):
        status = []
        out = b"".join(handler(environ(path, body, key, idem), lambda s, h, *a: status.append(s)))
        if not status[0].startswith(("200", "201")):
            raise SystemExit(f"{path} answered {status[0]}: {out[:300]!r}")

    call("/bench/bare/", {"n": 0}, f"{run}-connect")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    redis_client = redis.Redis.from_url(args.redis)

    def cpu() -> tuple[float, float, float]:
        info = redis_client.info("cpu")
        return (
            time.process_time(),
            parse_stat(Path(f"/proc/{backend}/stat").read_text())[1],
            info["used_cpu_sys"] + info["used_cpu_user"],
        )

    n = args.start
    costs: dict[str, list[tuple[float, float, float]]] = {v: [] for v in variants}
    shuffle = random.Random(7)
    for block in range(args.blocks + 1):
        for variant in shuffle.sample(variants, len(variants)):
            setups[variant]()
            before = cpu()
            for _ in range(args.block):
                n += 1
                if variant == "bare":
                    call("/bench/bare/", {"n": n, "note": "bare"}, f"{run}-{n}")
                else:
                    body = {
                        "order_number": f"B-{n}",
                        "kind": "refund_only",
                        "reason": "size_fit",
                        "lines": [{"sku": "SKU-2", "quantity": 1}],
                    }
                    call("/api/v1/refunds/", body, f"{run}-{n}")
            after = cpu()
            if block:  # the first round warms every variant up
                costs[variant].append(tuple(1000 * (a - b) / args.block for a, b in zip(after, before, strict=True)))
    print(f"CPU ms per request, median of {args.blocks} blocks of {args.block} (next free --start {n + 1}):")
    for variant, rows in costs.items():
        py, pg, rd = (statistics.median(row[i] for row in rows) for i in range(3))
        total = statistics.median(sum(row) for row in rows)
        print(f"  {variant:15s} python {py:.3f}  postgres {pg:.3f}  redis {rd:.3f}  total {total:.3f}")


if __name__ == "__main__":
    main()
