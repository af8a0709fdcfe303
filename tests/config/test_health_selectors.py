import os
import uuid
from datetime import timedelta

import pytest
import redis
from django.utils import timezone
from django_q.conf import Conf
from django_q.signing import SignedPackage

from config.health import selectors
from config.health.selectors import worker_liveness


def test_an_empty_queue_is_healthy_even_if_nothing_ever_ran(queue):
    liveness = worker_liveness()
    assert (liveness.queued, liveness.oldest_queued_at, liveness.last_finished_at) == (0, None, None)
    assert not liveness.stalled and liveness.problem() == ""


def test_ages_of_the_oldest_queued_and_the_last_finished_task(queue):
    queue.queued(seconds=30)
    queue.queued(seconds=5)
    queue.finished(seconds=400)
    queue.finished(seconds=20, success=False)  # a failure is work that moved too
    queue.finished(seconds=1, cluster="another-queue")  # not ours
    liveness = worker_liveness()
    assert liveness.queued == 2
    assert 29 < liveness.oldest_queued_seconds < 32
    assert 19 < liveness.last_finished_seconds < 22
    assert not liveness.stalled


def test_old_queued_work_and_nothing_finished_for_as_long_is_a_stall(queue):
    queue.queued(seconds=90)
    queue.finished(seconds=75)
    liveness = worker_liveness()
    assert liveness.stalled
    assert liveness.problem().startswith(
        f"Background work on queue '{queue.name}' is stalled: 1 task(s) waiting, the oldest for 90 s"
    )
    assert "no task finished for 75 s (limit 60 s)" in liveness.problem()


def test_a_long_task_waiting_while_others_finish_is_not_a_stall(queue):
    queue.queued(seconds=90)
    queue.finished(seconds=10)
    assert not worker_liveness().stalled


def test_old_queued_work_on_a_queue_that_never_finished_a_task_is_a_stall(queue):
    queue.queued(seconds=90)
    liveness = worker_liveness()
    assert liveness.stalled and "no task has ever finished" in liveness.problem()


def test_young_queued_work_is_not_a_stall_however_long_the_workers_idled(queue):
    queue.finished(seconds=3600)
    queue.queued(seconds=10)
    assert not worker_liveness().stalled


def test_the_json_has_counts_and_ages_only(queue):
    queue.queued(seconds=90)
    body = worker_liveness().as_dict()
    assert set(body) == {
        "queue", "broker", "queued", "waiting", "prefetched", "oldest_queued_seconds", "last_finished_seconds",
        "stall_after_seconds", "stalled", "clusters",
    }  # fmt: skip
    assert body["broker"] == "orm" and body["queued"] == 1 and body["stalled"] is True


def test_on_redis_the_age_comes_from_the_head_of_the_list(queue, monkeypatch):
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/14"
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("needs Redis on 127.0.0.1:6379 (CI starts it)")
    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "REDIS", url)
    monkeypatch.setattr(selectors, "_brokers", {})
    key = f"django_q:{queue.name}:q"
    old = timezone.now() - timedelta(seconds=120)
    try:
        for at in (old, timezone.now()):
            client.rpush(key, SignedPackage.dumps({"id": uuid.uuid4().hex, "func": "time.sleep", "started": at}))
        liveness = worker_liveness()
        assert liveness.broker == "redis" and liveness.queued == 2
        assert liveness.oldest_queued_at == old
        assert liveness.stalled  # and nothing ever finished
    finally:
        client.delete(key)
