"""The after-commit chokepoint: tasks reach the broker only after commit, and a Redis broker
is made once per process and queue instead of once per task."""

import os
import subprocess
import sys
import uuid

import pytest
import redis
from django.conf import settings
from django.db import transaction
from django_q.conf import Conf
from django_q.signing import SignedPackage

from config import q2

BASE_DIR = settings.BASE_DIR

pytestmark = pytest.mark.django_db

REDIS_URL = "redis://127.0.0.1:6379/14"


@pytest.fixture
def redis_queue(monkeypatch):
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("needs Redis on 127.0.0.1:6379 (CI starts it)")
    name = f"rdtest-{uuid.uuid4().hex[:8]}"
    for attr, value in {"ORM": None, "REDIS": REDIS_URL, "CLUSTER_NAME": name, "PREFIX": name, "SYNC": False}.items():
        monkeypatch.setattr(Conf, attr, value)
    monkeypatch.setattr(q2, "_brokers", {})
    yield name
    redis.Redis.from_url(REDIS_URL).delete(f"django_q:{name}:q")


def test_tasks_reach_redis_after_commit_through_one_broker(redis_queue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            q2.enqueue_on_commit("math.floor", 1.5)
            q2.enqueue_on_commit("math.floor", 2.5)
            assert q2._brokers == {}, "nothing is queued before commit"

    broker = q2._brokers[redis_queue]
    assert list(q2._brokers) == [redis_queue]
    assert broker.queue_size() == 2


def test_a_rolled_back_transaction_queues_nothing(redis_queue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            q2.enqueue_on_commit("math.floor", 1.5)
            raise RuntimeError("roll back")

    assert callbacks == []
    assert redis.Redis.from_url(REDIS_URL).llen(f"django_q:{redis_queue}:q") == 0


def test_the_orm_broker_is_not_cached(settings, monkeypatch):
    monkeypatch.setattr(Conf, "ORM", "default")
    assert q2._broker() is None


@pytest.mark.parametrize(("broker", "redis_url"), [("rabbitmq", ""), ("redis", "")])
def test_a_broker_that_cannot_be_used_stops_the_start_with_a_sentence(broker, redis_url):
    env = {**os.environ, "Q_BROKER": broker, "REDIS_URL": redis_url, "DJANGO_SETTINGS_MODULE": "config.settings_test"}
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], cwd=BASE_DIR, env=env, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert f"Q_BROKER must be 'orm', or 'redis' with REDIS_URL set; it is '{broker}'." in done.stderr


# --- a broker that refuses the task after commit ------------------------------------------


@pytest.fixture
def orm_refusing(monkeypatch):
    """The ORM broker, not inline, refusing the tasks of `refused` funcs (its edge raises)."""
    from django.db import OperationalError
    from django_q.brokers.orm import ORM

    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(Conf, "ORM", "default")
    name = f"rdtest-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(Conf, "CLUSTER_NAME", name)
    refused = set()
    real = ORM.enqueue

    def enqueue(broker, package):
        if SignedPackage.loads(package)["func"] in refused:
            raise OperationalError("server closed the connection unexpectedly")
        return real(broker, package)

    monkeypatch.setattr(ORM, "enqueue", enqueue)
    return refused


def _queued_funcs():
    from django_q.models import OrmQ

    return [(row.task["func"], row.task["args"]) for row in OrmQ.objects.order_by("pk")]


def test_a_refused_task_is_logged_and_the_next_after_commit_work_still_runs(
    orm_refusing, django_capture_on_commit_callbacks, caplog
):
    orm_refusing.add("math.floor")
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            lost = q2.enqueue_on_commit("math.floor", 1.5)
            kept = q2.enqueue_on_commit("math.ceil", 2.5)
            assert (lost.ok, kept.ok) == (None, None), "nothing is tried before commit"

    assert (lost.ok, kept.ok) == (False, True)
    assert _queued_funcs() == [("math.ceil", (2.5,))]
    [warning] = [r for r in caplog.records if r.name == "config.q2"]
    assert warning.levelname == "WARNING"
    assert warning.getMessage() == (
        "could not queue math.floor(1.5,), left to its sweeper: OperationalError: server closed the connection unexpectedly"
    )


def test_a_refused_batch_is_logged_once_with_what_it_held(orm_refusing, django_capture_on_commit_callbacks, caplog):
    orm_refusing.add("math.floor")
    with django_capture_on_commit_callbacks(execute=True):
        batch = q2.enqueue_many_on_commit("math.floor", [(n,) for n in range(5)])

    assert batch.ok is False
    assert _queued_funcs() == [], "the ORM broker's batch is one transaction: none of it stays"
    [warning] = [r.getMessage() for r in caplog.records if r.name == "config.q2"]
    assert warning.startswith("could not queue math.floor for (0,), (1,), (2,) and 2 more, left to its sweeper: OperationalError")


def test_a_refusal_that_is_not_the_brokers_is_logged_with_its_traceback(monkeypatch, caplog, django_capture_on_commit_callbacks):
    """A bug (say an argument that can not be pickled) is still swallowed after commit, but
    logged as an error with the traceback, not as an outage."""
    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(Conf, "ORM", "default")

    with django_capture_on_commit_callbacks(execute=True):
        queued = q2.enqueue_on_commit("math.floor", lambda: 1)

    assert queued.ok is False
    [record] = [r for r in caplog.records if r.name == "config.q2"]
    assert record.levelname == "ERROR" and record.exc_info is not None
    assert _queued_funcs() == []


def test_with_tasks_run_inline_an_error_is_raised_as_before(monkeypatch, django_capture_on_commit_callbacks):
    """SYNC (tests, scripts) has no broker to lose a task: what fails is raised, not hidden."""
    monkeypatch.setattr(Conf, "SYNC", True)
    with pytest.raises(Exception, match="pickle"), django_capture_on_commit_callbacks(execute=True):
        q2.enqueue_on_commit("math.floor", lambda: 1)


def test_the_redis_url_gets_short_timeouts_unless_it_sets_its_own():
    from config.settings import redis_url_with_timeouts

    assert redis_url_with_timeouts("redis://h:6379/2", connect=1, read=2) == (
        "redis://h:6379/2?socket_connect_timeout=1&socket_timeout=2"
    )
    assert redis_url_with_timeouts("rediss://:pw@h:6380/0?socket_timeout=9", connect=1, read=2) == (
        "rediss://:pw@h:6380/0?socket_timeout=9&socket_connect_timeout=1"
    )


@pytest.mark.django_db
def test_a_swept_task_is_queued_after_commit_without_a_second_wait_for_the_disk(
    orm_refusing, django_capture_on_commit_callbacks, caplog
):
    """The ORM broker's row for work a sweeper covers is written after commit, in its own
    transaction, with PostgreSQL's synchronous_commit off for that transaction only; a
    refusal is logged like any other."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            queued = q2.enqueue_swept_on_commit("math.floor", 1.5)
            assert queued.ok is None and _queued_funcs() == []
    assert queued.ok is True
    assert _queued_funcs() == [("math.floor", (1.5,))]
    sql = [q["sql"] for q in queries.captured_queries]
    if connection.vendor == "postgresql":
        assert "SET LOCAL synchronous_commit TO OFF" in sql
    assert not any(s.strip().upper() == "SELECT 1" for s in sql), "no second health check for the broker"
    orm_refusing.add("math.ceil")
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        lost = q2.enqueue_swept_on_commit("math.ceil", 2.5)
    assert lost.ok is False and _queued_funcs() == [("math.floor", (1.5,))]
    assert any("could not queue math.ceil" in r.getMessage() for r in caplog.records)
