"""Reproduce issue 13 by hand: SIGKILL the idle django-q2 worker that waits for the next task,
and watch whether tasks still finish.

    DATABASE_URL=postgres://… REDIS_URL=redis://… python bench/q2_kill_worker.py [--stock] [--tasks 8] [--watch 15]

It starts `manage.py qcluster` (or, with `--stock`, django-q2's own Cluster) with two
workers on its own queue name, waits until both are idle, kills -9 the one blocked reading
the task pipe (it holds the queue's reader lock; the other waits for that lock), queues
`--tasks` trivial tasks and prints, once a second, how many finished and how many are still
queued, with what each worker waits for in the kernel (`read` = holding the lock and waiting for a task,
`futex` = waiting for the lock). The database must be migrated; REDIS_URL lets this
process see the cluster's heartbeat (the worker pids).
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
STOCK = "import django; django.setup(); from django_q.cluster import Cluster; Cluster().start()"


def syscall(pid: int) -> str:
    """What the process waits for, from the kernel: `read` (a pipe), `futex` (a lock), or other."""
    try:
        wchan = Path(f"/proc/{pid}/wchan").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return "gone"
    return "read" if "pipe" in wchan else "futex" if "futex" in wchan else wchan or "running"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--stock", action="store_true", help="django-q2's own Cluster instead of manage.py qcluster")
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--watch", type=int, default=15, help="seconds to watch after the kill")
    args = parser.parse_args()

    name = f"rd-kill-{uuid.uuid4().hex[:6]}"
    os.environ.update(Q_CLUSTER_NAME=name, Q_WORKERS="2", DJANGO_SETTINGS_MODULE="config.settings_test")
    import django

    django.setup()
    from django_q.conf import Conf
    from django_q.models import OrmQ, Task
    from django_q.status import Stat
    from django_q.tasks import async_task

    cmd = [sys.executable, "-c", STOCK] if args.stock else [sys.executable, "manage.py", "qcluster"]
    log = open(Path(tempfile.gettempdir()) / f"{name}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        stat = None
        for _ in range(100):
            stats = [s for s in Stat.get_all() if s.workers]
            if stats and all(syscall(pid) in {"read", "futex"} for pid in stats[0].workers):
                stat = stats[0]
                break
            time.sleep(0.1)
        if stat is None:
            sys.exit("no heartbeat from the cluster: is REDIS_URL set, and the database migrated?")
        calls = {pid: syscall(pid) for pid in stat.workers}
        holder = next(pid for pid, call in calls.items() if call == "read")
        print(f"{'stock django-q2' if args.stock else 'manage.py qcluster'}: workers {calls}; kill -9 {holder}")
        os.kill(holder, signal.SIGKILL)
        time.sleep(1)
        for _ in range(args.tasks):
            async_task("time.sleep", 0.05)
        started = time.monotonic()
        while time.monotonic() - started < args.watch:
            stats = Stat.get_all()
            workers = {pid: syscall(pid) for s in stats for pid in s.workers}
            finished = Task.objects.filter(cluster=Conf.CLUSTER_NAME, func="time.sleep").count()
            queued = OrmQ.objects.filter(key=name).count() if Conf.ORM else "?"
            print(
                f"{time.monotonic() - started:5.1f}s finished={finished}/{args.tasks} queued={queued} workers={workers}",
                flush=True,
            )
            time.sleep(1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()
        if Conf.ORM:
            OrmQ.objects.filter(key=name).delete()
        print(f"cluster log: {log.name}")


if __name__ == "__main__":
    main()
