import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ, Task
from django_q.signing import SignedPackage


class Queue:
    """The queue's state as django-q2 leaves it: tasks in the broker's table, results in its
    task table, each dated `seconds` ago."""

    def __init__(self, name: str):
        self.name = name

    def queued(self, seconds: float) -> OrmQ:
        at = timezone.now() - timedelta(seconds=seconds)
        package = SignedPackage.dumps({"id": uuid.uuid4().hex, "func": "time.sleep", "args": (0,), "kwargs": {}, "started": at})
        return OrmQ.objects.create(key=self.name, payload=package, lock=at)

    def finished(self, seconds: float, *, success: bool = True, cluster: str | None = None) -> Task:
        at = timezone.now() - timedelta(seconds=seconds)
        return Task.objects.create(
            id=uuid.uuid4().hex,
            name=uuid.uuid4().hex[:20],
            func="time.sleep",
            args=(0,),
            kwargs={},
            started=at,
            stopped=at,
            success=success,
            cluster=cluster or self.name,
        )


@pytest.fixture
def queue(db, monkeypatch, settings):
    """An ORM-broker queue of this test's own, with a stall limit of 60 s."""
    name = f"rdtest-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(Conf, "CLUSTER_NAME", name)
    monkeypatch.setattr(Conf, "PREFIX", name)
    monkeypatch.setattr(Conf, "Q_STAT", f"django_q:{name}:cluster")
    settings.WORKERS_STALL_SECONDS = 60
    return Queue(name)
