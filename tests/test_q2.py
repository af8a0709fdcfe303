"""The after-commit chokepoint: tasks reach the broker only after commit, and a Redis broker
is made once per process and queue instead of once per task."""

import uuid

import pytest
import redis
from django.db import transaction
from django_q.conf import Conf

from config import q2

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
