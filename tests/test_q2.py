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


def test_a_task_row_is_only_for_a_queued_orm_broker(redis_queue, monkeypatch):
    """With Redis, or with tasks run inline, there is no row to write: the caller enqueues."""
    assert q2.task_row("math.floor", 1.5) is None
    monkeypatch.setattr(Conf, "ORM", "default")
    key, package = q2.task_row("math.floor", 1.5)
    assert key == redis_queue
    assert {k: v for k, v in SignedPackage.loads(package).items() if k in ("func", "args")} == {
        "func": "math.floor",
        "args": (1.5,),
    }
    monkeypatch.setattr(Conf, "SYNC", True)
    assert q2.task_row("math.floor", 1.5) is None


@pytest.mark.parametrize(("broker", "redis_url"), [("rabbitmq", ""), ("redis", "")])
def test_a_broker_that_cannot_be_used_stops_the_start_with_a_sentence(broker, redis_url):
    env = {**os.environ, "Q_BROKER": broker, "REDIS_URL": redis_url, "DJANGO_SETTINGS_MODULE": "config.settings"}
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], cwd=BASE_DIR, env=env, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert f"Q_BROKER must be 'orm', or 'redis' with REDIS_URL set; it is '{broker}'." in done.stderr
