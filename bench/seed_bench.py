"""How long `seed_demo` takes at a given size, on a fresh PostgreSQL database (run by hand).

    python bench/seed_bench.py --orders 1000000 --db rd_core_seed

Drops and recreates the database `--db` on the server of DATABASE_URL (default local
postgres), migrates it, runs `seed_demo --no-live` timing only the load, then prints the row
counts and rates. Append the figures to docs/benchmarks.md with the machine they ran on.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--db", default="rd_core_seed")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--chunk", type=int, default=5000)
    args = parser.parse_args()

    url = f"{args.server}/{args.db}"
    # seed_demo loads only with DEBUG on: demo data, never a real install's.
    env = {**os.environ, "DATABASE_URL": url, "Q_CLUSTER_NAME": "rd-seed-bench", "DEBUG": "1"}
    host = args.server.rsplit("@", 1)[-1].split(":")[0]
    user = args.server.split("//", 1)[1].split("@", 1)[0]
    for sql in (f"drop database if exists {args.db}", f"create database {args.db}"):
        subprocess.run(["psql", "-h", host, "-U", user, "-q", "-c", sql], check=True)
    manage = [sys.executable, str(BASE_DIR / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=BASE_DIR)

    started = time.monotonic()
    subprocess.run(
        [*manage, "seed_demo", "--orders", str(args.orders), "--chunk", str(args.chunk), "--no-live", "--seed", "1"],
        env=env,
        check=True,
        cwd=BASE_DIR,
    )
    seconds = time.monotonic() - started

    tables = [
        "orders_order",
        "orders_orderline",
        "orders_orderevent",
        "orders_trackingevent",
        "refunds_refundrequest",
        "refunds_refundevent",
        "refunds_payout",
    ]
    counts = {}
    for table in tables:
        out = subprocess.run(
            ["psql", "-h", host, "-U", user, "-d", args.db, "-At", "-c", f"select count(*) from {table}"],
            capture_output=True,
            text=True,
            check=True,
        )
        counts[table] = int(out.stdout.strip())
    total = sum(counts.values())
    print(f"seed_demo --orders {args.orders}: {seconds:.0f} s ({args.orders / seconds:.0f} orders/s)")
    for table, n in counts.items():
        print(f"  {table:<24} {n:>10}")
    print(f"  rows in these tables: {total} ({total / seconds:.0f} rows/s)")


if __name__ == "__main__":
    main()
