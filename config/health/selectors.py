"""Is background work moving? Read from the broker and django-q2's own tables, never from
the cluster's processes, so it answers the same when the cluster is stuck or gone.

A cluster's heartbeat (django-q2's `Stat`, saved every half second) is not enough: a stuck
Sentinel keeps beating while no worker can take a task. What shows a stall is the queue
itself: work waiting longer than `WORKERS_STALL_SECONDS` while nothing finished for as long.
The sweepers run every minute, so a healthy cluster finishes something at least that often
even when nobody submits anything.
"""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Max
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.models import OrmQ, Task
from django_q.signing import BadSignature, SignedPackage
from django_q.status import Stat

_brokers: dict[tuple[str, bool], object] = {}


@dataclass(frozen=True)
class Heartbeat:
    status: str
    workers: int
    prefetched: int  # tasks the cluster took from the broker that no worker has started
    seconds_ago: float


@dataclass(frozen=True)
class Liveness:
    queue: str
    broker: str
    checked_at: datetime
    queued: int
    oldest_queued_at: datetime | None  # None: nothing queued, or (Redis) not knowable
    last_finished_at: datetime | None
    heartbeats: list[Heartbeat] | None  # None: not visible from this process (see below)
    stall_after_seconds: int

    @property
    def prefetched(self) -> int:
        return sum(h.prefetched for h in self.heartbeats or [])

    @property
    def waiting(self) -> int:
        """Tasks queued and not finished. On the ORM broker a task stays in its table until
        its result is saved, so the broker's count has them all; on Redis the tasks a
        cluster took off the list are only in its heartbeat."""
        return self.queued + (self.prefetched if self.broker == "redis" else 0)

    @property
    def oldest_queued_seconds(self) -> float | None:
        return _age(self.oldest_queued_at, self.checked_at)

    @property
    def last_finished_seconds(self) -> float | None:
        return _age(self.last_finished_at, self.checked_at)

    @property
    def stalled(self) -> bool:
        limit = self.stall_after_seconds
        if not self.waiting:
            return False
        waited, idle = self.oldest_queued_seconds, self.last_finished_seconds
        if waited is not None and waited <= limit:
            return False
        if waited is None and idle is None:
            return False  # nothing to measure against yet (a first task on Redis)
        return idle is None or idle > limit

    def problem(self) -> str:
        """One sentence on what is wrong, or "" when work is moving."""
        if not self.stalled:
            return ""
        waited = f", the oldest for {self.oldest_queued_seconds:.0f} s" if self.oldest_queued_at else ""
        idle = (
            f"no task finished for {self.last_finished_seconds:.0f} s" if self.last_finished_at else "no task has ever finished"
        )
        return (
            f"Background work on queue {self.queue!r} is stalled: {self.waiting} task(s) waiting{waited}, and {idle} "
            f"(limit {self.stall_after_seconds} s). Check the qcluster service."
        )

    def as_dict(self) -> dict:
        """For /health/: counts and ages only, nothing about hosts, pids or payloads."""
        return {
            "queue": self.queue,
            "broker": self.broker,
            "queued": self.queued,
            "waiting": self.waiting,
            "prefetched": self.prefetched if self.heartbeats is not None else None,
            "oldest_queued_seconds": _round(self.oldest_queued_seconds),
            "last_finished_seconds": _round(self.last_finished_seconds),
            "stall_after_seconds": self.stall_after_seconds,
            "stalled": self.stalled,
            "clusters": None
            if self.heartbeats is None
            else [
                {
                    "status": h.status,
                    "workers": h.workers,
                    "prefetched": h.prefetched,
                    "seconds_since_heartbeat": _round(h.seconds_ago),
                }
                for h in self.heartbeats
            ],
        }


def worker_liveness(*, now: datetime | None = None) -> Liveness:
    """The queue's liveness now: three or four cheap queries (it is polled)."""
    now = now or timezone.now()
    broker = _broker()
    if Conf.ORM:
        rows = OrmQ.objects.using(Conf.ORM).filter(key=broker.list_key)
        queued = rows.count()
        oldest = _started(rows.order_by("pk").values_list("payload", flat=True).first())
        kind = "orm"
    else:
        queued = broker.queue_size()
        # Redis: the list's head is the oldest task not yet taken by a cluster; tasks a
        # cluster took are only counted (its heartbeat's `prefetched`), their age unknown.
        oldest = _started(broker.connection.lindex(broker.list_key, 0)) if queued else None
        kind = "redis"
    last = Task.objects.filter(cluster=Conf.CLUSTER_NAME).aggregate(last=Max("stopped"))["last"]
    return Liveness(
        queue=Conf.CLUSTER_NAME,
        broker=kind,
        checked_at=now,
        queued=queued,
        oldest_queued_at=oldest,
        last_finished_at=last,
        heartbeats=_heartbeats(broker, now),
        stall_after_seconds=settings.WORKERS_STALL_SECONDS,
    )


def _broker():
    # One per process and queue: the Redis broker opens a connection pool when it is made.
    key = (Conf.CLUSTER_NAME, bool(Conf.ORM))
    broker = _brokers.get(key)
    if broker is None:
        broker = _brokers.setdefault(key, get_broker(Conf.CLUSTER_NAME))
    return broker


def _heartbeats(broker, now) -> list[Heartbeat] | None:
    # On the ORM broker django-q2 keeps heartbeats in Django's cache; the local-memory
    # cache (no REDIS_URL) is per process, so another process's beats can not be seen.
    if Conf.ORM and settings.CACHES["default"]["BACKEND"].endswith("LocMemCache"):
        return None
    beats = []
    for stat in Stat.get_all(broker=broker):
        beats.append(
            Heartbeat(
                status=str(stat.status),
                workers=len(stat.workers),
                prefetched=stat.task_q_size,
                seconds_ago=max((now - stat.timestamp).total_seconds(), 0.0),
            )
        )
    return beats


def _started(package) -> datetime | None:
    """When django-q2 packaged the task (its `started`, set when it was queued)."""
    if not package:
        return None
    try:
        return SignedPackage.loads(package).get("started")
    except (BadSignature, TypeError, ValueError):
        return None


def _age(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else max((now - moment).total_seconds(), 0.0)


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)
