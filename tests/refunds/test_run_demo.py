"""`run_demo` for real: a fresh SQLite file, migrate, seed, run, log in to the admin, Ctrl-C.

The demo runs on its own SQLite file whatever the test database is, as a newcomer's would.
"""

import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port

BASE_DIR = Path(__file__).resolve().parent.parent.parent
pytestmark = pytest.mark.e2e


def _manage(env, *args, timeout=300):
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=timeout, check=True
    )


def _children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
    return bool(state) and not state.startswith("Z")


def test_run_demo_serves_the_admin_with_demo_data_and_stops_cleanly_on_ctrl_c(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "Q_CLUSTER_NAME": f"rd-demo-{os.getpid()}",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("Q_SYNC", None)
    env.pop("REDIS_URL", None)
    _manage(env, "migrate", "--noinput")
    # As `make demo` does: demo data only with DEBUG on; the logins are random, printed once.
    seeded = _manage({**env, "DEBUG": "1"}, "seed_demo", "--orders", "120", "--no-live", "--verbosity", "0").stdout
    password = re.search(r"^  support\s+(\S+)\s+support$", seeded, re.M).group(1)
    port = free_port()
    log = open(tmp_path / "run_demo.log", "w+")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "run_demo", "--host", "127.0.0.1", "--port", str(port)],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while "Refund Desk is running." not in (tmp_path / "run_demo.log").read_text():
            assert proc.poll() is None, (tmp_path / "run_demo.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "run_demo.log").read_text()
            time.sleep(0.2)
        banner = (tmp_path / "run_demo.log").read_text()
        assert f"http://127.0.0.1:{port}/admin/" in banner
        assert re.search(r"^    support\s+support$", banner, re.M) and password not in banner
        children = _children_of(proc.pid)
        assert len(children) == 2  # the web server and the q2 cluster

        # Log in as support through the real login form and open the refund requests.
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        base = f"http://127.0.0.1:{port}"
        page = opener.open(f"{base}/admin/login/?next=/admin/", timeout=10).read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        form = urllib.parse.urlencode(
            {"csrfmiddlewaretoken": token, "username": "support", "password": password, "next": "/admin/"}
        ).encode()
        login = urllib.request.Request(f"{base}/admin/login/", data=form, headers={"Referer": base})  # noqa: S310 - http only
        home = opener.open(login, timeout=10)
        assert home.url.rstrip("/").endswith("/admin"), home.url
        listing = opener.open(f"{base}/admin/refunds/refundrequest/", timeout=30).read().decode()
        assert re.search(r"RF-0000\d\d", listing)
        css = opener.open(f"{base}/static/admin/css/base.css", timeout=10)
        assert css.status == 200  # the admin looks like the admin

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, (tmp_path / "run_demo.log").read_text()
        assert "Stopped the web server and the q2 cluster." in (tmp_path / "run_demo.log").read_text()
        assert not [pid for pid in children if _alive(pid)]
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
