import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from config.actors import Actor
from tests.factories import UserFactory

BASE_DIR = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config, items):
    """Tests marked `postgres` need real row locks; on SQLite they are skipped, with the reason."""
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL=postgres://...); SQLite has no row locks")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """PBKDF2 costs ~0.3 s a user; tests make hundreds of users and don't test hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _api_limits_out_of_the_way(settings):
    """The API's limits (settings.API_THROTTLE_RATES) are far above what any test sends, and
    counted afresh in each test; tests/api/test_limits.py sets its own and tests them."""
    from django.core.cache import cache

    settings.API_THROTTLE_RATES = {"channel_burst": "100000/s", "channel_sustained": "100000/min", "failed_auth": "100000/min"}
    cache.clear()


@pytest.fixture(autouse=True)
def _language_reset():
    """Each test starts in the default language: a request through LocaleMiddleware leaves its
    language active in the thread, which a later test would otherwise inherit."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _sync_q2(settings, monkeypatch):
    """Run django-q2 tasks inline in unit tests; end-to-end tests start a real cluster instead."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture(autouse=True)
def _second_factor_at_force_login(request, monkeypatch):
    """A user whose role requires two-factor authentication, logged in by the test client, has
    passed it, through django-otp's own API: a confirmed authenticator, and `django_otp.login`
    storing it in the session as the verify page does. Tests of the second factor itself are
    marked `real_two_factor` and log in without it."""
    if request.node.get_closest_marker("real_two_factor"):
        return
    from django.http import HttpRequest
    from django.test import Client

    original = Client._login

    def _login(self, user, backend=None):
        import django_otp
        from django_otp.plugins.otp_totp.models import TOTPDevice

        from refunds.roles import two_factor_required

        original(self, user, backend)
        if two_factor_required(user):
            device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
                user=user, name="test authenticator", confirmed=True
            )
            fake = HttpRequest()
            fake.session, fake.user = self.session, user
            django_otp.login(fake, device)
            fake.session.save()

    monkeypatch.setattr(Client, "_login", _login)


@pytest.fixture
def is_postgres():
    return connection.vendor == "postgresql"


def _role_user(role):
    user = UserFactory(username=f"{role}-user", role=role)
    return user


@pytest.fixture
def support_user(db):
    return _role_user("support")


@pytest.fixture
def support_user2(db):
    return UserFactory(username="support-user-2", role="support")


@pytest.fixture
def warehouse_user(db):
    return _role_user("warehouse")


@pytest.fixture
def finance_user(db):
    return _role_user("finance")


@pytest.fixture
def finance_user2(db):
    return UserFactory(username="finance-user-2", role="finance")


@pytest.fixture
def risk_user(db):
    return _role_user("risk")


@pytest.fixture
def admin_user(db):
    return UserFactory(username="admin", is_superuser=True)


@pytest.fixture
def support(support_user):
    return Actor.for_user(support_user)


@pytest.fixture
def warehouse(warehouse_user):
    return Actor.for_user(warehouse_user)


@pytest.fixture
def finance(finance_user):
    return Actor.for_user(finance_user)


def _database_url_for_subprocess() -> str:
    """The test database as a URL, so a child process (qcluster, gunicorn) uses the same one."""
    s = connection.settings_dict
    if s["ENGINE"].endswith("postgresql"):
        user = s.get("USER") or "postgres"
        pw = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
        return f"postgres://{user}{pw}@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"
    return f"sqlite:///{s['NAME']}"


@pytest.fixture
def subprocess_env():
    """Environment for a child process of the project that must see this test's database."""
    env = {**os.environ, "DATABASE_URL": _database_url_for_subprocess(), "PYTHONUNBUFFERED": "1"}
    env.pop("Q_SYNC", None)
    return env


@contextlib.contextmanager
def _cluster(subprocess_env, monkeypatch, tmp_path, command=("manage.py", "qcluster"), **env):
    from django_q.conf import Conf

    name = f"rdtest-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(Conf, "CLUSTER_NAME", name)
    monkeypatch.setattr(Conf, "PREFIX", name)
    # ... and the key of its heartbeats (django-q2 derives it from PREFIX once, at import)
    monkeypatch.setattr(Conf, "Q_STAT", f"django_q:{name}:cluster")
    log = open(tmp_path / "qcluster.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, *command],
        cwd=BASE_DIR,
        env={**subprocess_env, "Q_CLUSTER_NAME": name, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    proc.log_path = tmp_path / "qcluster.log"
    time.sleep(1.5)  # the cluster forks its workers before it polls the broker
    assert proc.poll() is None, (tmp_path / "qcluster.log").read_text()
    try:
        yield proc
    finally:
        # SIGTERM to the main process only, as a supervisor does: it stops the Sentinel,
        # which stops its children in order (a SIGTERM to the whole group can kill the
        # Sentinel while it holds a lock the main process then waits for). Then whatever is
        # left of the group, also when the test failed.
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()


@pytest.fixture
def qcluster(transactional_db, subprocess_env, monkeypatch, tmp_path):
    """A real `manage.py qcluster` process on the test database, with its own queue name.

    Tasks the test queues are run by this cluster, not inline. Yields the Popen; the
    cluster is stopped (process group) afterwards.
    """
    with _cluster(subprocess_env, monkeypatch, tmp_path) as proc:
        yield proc


@pytest.fixture
def qcluster_on_redis(transactional_db, subprocess_env, monkeypatch, tmp_path):
    """`qcluster`, with django-q2's Redis broker (Q_BROKER=redis) in the test and the cluster."""
    import redis
    from django_q.conf import Conf

    from config import q2

    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/14"
    try:
        redis.Redis.from_url(url).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("needs Redis on 127.0.0.1:6379 (CI starts it)")
    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "REDIS", url)
    monkeypatch.setattr(q2, "_brokers", {})
    with _cluster(subprocess_env, monkeypatch, tmp_path, Q_BROKER="redis", REDIS_URL=url) as proc:
        yield proc


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on now, for a server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, *, timeout: float = 5.0, interval: float = 0.05):
    """Poll `predicate` until it returns something truthy; return it, or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
