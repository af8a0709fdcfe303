"""Run the product for a demo: the web server and a django-q2 cluster, side by side.

Both are child processes of this command (so each has its own database connections and the
cluster can fork its workers); Ctrl-C or SIGTERM stops both, and if either dies the other is
stopped too. The web server is Django's `runserver --insecure` (it serves the admin's static
files without DEBUG), which is right for a demo and wrong for production (use gunicorn).
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from refunds.management.commands.seed_demo import STAFF

BASE_DIR = Path(settings.BASE_DIR)
QCLUSTER_LOG = BASE_DIR / "qcluster.log"


def _port_open(host: str, port: int) -> bool:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


class Command(BaseCommand):
    help = "Run the web server and a django-q2 cluster together; Ctrl-C stops both."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args, host: str, port: int, **options):
        if _port_open(host, port):
            raise CommandError(f"Something is already listening on {host}:{port}; pass --port.")
        manage = [sys.executable, str(BASE_DIR / "manage.py")]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.children: list[tuple[str, subprocess.Popen]] = []
        self.stopping = False
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            self._start("web", [*manage, "runserver", f"{host}:{port}", "--noreload", "--insecure"], env)
            # The cluster prints every SMS and e-mail the console backends "send": keep them
            # in a file so the banner below stays readable.
            self._start("q2 cluster", [*manage, "qcluster"], env, log=QCLUSTER_LOG)
            self._wait_until_listening(host, port)
            self._banner(host, port)
            while not self.stopping:
                for name, proc in self.children:
                    if proc.poll() is not None:
                        self.stderr.write(f"The {name} stopped (exit code {proc.returncode}); stopping the rest.")
                        self.stopping = True
                        self.exit_code = 1
                time.sleep(0.3)
        finally:
            self._stop_all()
        if getattr(self, "exit_code", 0):
            raise CommandError("run_demo stopped because a child process died.")

    def _start(self, name: str, cmd: list[str], env: dict, log: Path | None = None) -> None:
        # Own process groups: a Ctrl-C reaches this command, which then stops each child
        # in order, instead of all of them racing to shut down at once.
        out = open(log, "ab") if log else None  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(cmd, cwd=BASE_DIR, env=env, start_new_session=True, stdout=out, stderr=out)  # noqa: S603
        self.children.append((name, proc))

    def _wait_until_listening(self, host: str, port: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not _port_open(host, port):
            for name, proc in self.children:
                if proc.poll() is not None:
                    raise CommandError(f"The {name} exited with code {proc.returncode} while starting.")
            if time.monotonic() > deadline:
                raise CommandError(f"The web server did not listen on {host}:{port} within {timeout:.0f} s.")
            time.sleep(0.2)

    def _on_signal(self, signum, frame) -> None:
        self.stopping = True

    def _stop_all(self) -> None:
        for _name, proc in self.children:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _name, proc in self.children:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self.children:
            self.stdout.write("Stopped the web server and the q2 cluster.")

    def _banner(self, host: str, port: int) -> None:
        db = settings.DATABASES["default"]
        where = db["NAME"] if db["ENGINE"].endswith("sqlite3") else f"{db.get('HOST')}/{db['NAME']}"
        broker = "Redis" if settings.Q_CLUSTER.get("redis") else "the database (django-q2 ORM broker)"
        base = f"http://{host}:{port}"
        lines = [
            "",
            "Refund Desk is running.",
            f"  Admin:     {base}/admin/",
            f"  API docs:  {base}/api/docs/",
            f"  Database:  {db['ENGINE'].rsplit('.', 1)[-1]} ({where}); task broker: {broker}",
            f"  q2 cluster log (the SMS and e-mails it sends): {QCLUSTER_LOG}",
            "  Logins (their passwords were printed by seed_demo when it loaded the demo data):",
            *[f"    {u:<10} {r or 'superuser'}" for u, r in STAFF.items()],
            "Press Ctrl-C to stop both the web server and the q2 cluster.",
            "",
        ]
        self.stdout.write("\n".join(lines))
        self.stdout.flush()  # piped into a log (make, CI) stdout is block-buffered
