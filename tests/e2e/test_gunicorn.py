"""The product as production runs it: `gunicorn config.wsgi`, a real worker on the test
database, asked over real HTTP.

- It serves its own static files (the admin's, Swagger UI's) through WhiteNoise.
- With kept connections (DB_CONN_MAX_AGE), a connection PostgreSQL dropped (a restart, a
  failover) must not fail the next request: the test terminates the worker's backend with
  `pg_terminate_backend`, as a restart would, and asks again.
"""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys

import pytest
import requests
from django.db import connection

from tests.api.conftest import make_channel
from tests.conftest import BASE_DIR, free_port, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]


@contextlib.contextmanager
def gunicorn(env: dict, tmp_path):
    port = free_port()
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--workers", "1", "--bind", f"127.0.0.1:{port}"],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(lambda: _listening(port), timeout=15)
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
        log.close()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _get(url: str, key: str) -> int:
    return requests.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=10).status_code


def _drop_the_servers_connections() -> int:
    """Terminate every other backend on the test database, as a PostgreSQL restart would."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        return cursor.fetchone()[0]


def test_gunicorn_serves_the_admin_and_the_api_docs_with_their_static_files(transactional_db, subprocess_env, tmp_path):
    env = {**subprocess_env, "DEBUG": "0"}
    with gunicorn(env, tmp_path) as base:
        login = requests.get(f"{base}/admin/login/", timeout=10)
        docs = requests.get(f"{base}/api/docs/", timeout=10)
        assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', login.text + docs.text)
        assert any(a.endswith("admin/css/base.css") for a in assets), login.text
        assert any("swagger-ui-bundle" in a for a in assets), docs.text
        for asset in assets:
            response = requests.get(f"{base}{asset}", timeout=10)
            assert response.status_code == 200 and response.content, asset


@pytest.mark.parametrize(("health_checks", "after_the_drop"), [("1", 200), ("0", 500)])
def test_a_kept_connection_the_server_dropped_is_replaced_not_failed(
    transactional_db, subprocess_env, tmp_path, health_checks, after_the_drop
):
    _channel, key = make_channel("shop")
    env = {**subprocess_env, "DB_CONN_MAX_AGE": "60", "DB_CONN_HEALTH_CHECKS": health_checks}
    with gunicorn(env, tmp_path) as base:
        url = f"{base}/api/v1/refunds/"
        assert _get(url, key) == 200
        assert _drop_the_servers_connections() == 1  # the worker's kept connection

        # With the checks the request gets a new connection; without, it fails once (the
        # case the setting exists for) and Django drops the broken connection after it.
        assert _get(url, key) == after_the_drop, (tmp_path / "gunicorn.log").read_text()
        assert _get(url, key) == 200
