"""The one after-commit chokepoint for background work.

Enqueueing inside a transaction that later rolls back would run a task for something that
never happened; enqueueing before commit lets a fast worker read rows that are not there
yet. So every task is handed to django-q2 only once the surrounding transaction commits
(outside a transaction, `on_commit` runs it at once).
"""

import threading

from django.db import transaction
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.tasks import async_task

_brokers: dict[str, object] = {}
_brokers_lock = threading.Lock()


def _broker():
    """The Redis broker of this process for the current queue, or None for the ORM broker.

    `async_task` builds a new broker per task, and the Redis broker opens a new connection
    each time (slower than the ORM broker in the API bench); its client is thread-safe and
    pools connections, so one per process and queue name serves every request. The ORM
    broker rides on Django's own connection and needs no cache.
    """
    if Conf.ORM or not Conf.REDIS:
        return None
    key = Conf.CLUSTER_NAME
    broker = _brokers.get(key)
    if broker is None:
        with _brokers_lock:
            broker = _brokers.setdefault(key, get_broker(key))
    return broker


def _enqueue(func: str, *args, **kwargs):
    broker = _broker()
    if broker is not None:
        kwargs["broker"] = broker
    return async_task(func, *args, **kwargs)


class _Kept:
    """A stand-in broker for `async_task` that keeps the signed package instead of sending it."""

    def __init__(self, list_key: str):
        self.list_key = list_key
        self.package = None

    def enqueue(self, package: str) -> None:
        self.package = package


def task_row(func: str, *args) -> tuple[str, str] | None:
    """(queue key, signed package) of a task for the ORM broker's table, for a caller that
    writes it in the same statement or transaction as the rows the task is about; the row
    is then visible, and the task runs, exactly when those rows are committed.

    None when tasks do not go through the ORM broker (Redis), or run inline (SYNC): the
    caller enqueues with `enqueue_on_commit` instead. The package is django-q2's own, from
    `async_task`; only the broker's write is the caller's. If the caller's write is refused,
    nothing was queued (django-q2's "Enqueued" log line was still written).
    """
    if not Conf.ORM or Conf.SYNC:
        return None
    kept = _Kept(Conf.CLUSTER_NAME)
    async_task(func, *args, broker=kept)
    return kept.list_key, kept.package


def enqueue_on_commit(func: str, *args, **kwargs) -> None:
    """Queue `func` (a dotted path) with django-q2 after the current transaction commits."""
    transaction.on_commit(lambda: _enqueue(func, *args, **kwargs))


def enqueue_many_on_commit(func: str, args_list: list[tuple]) -> None:
    """Queue `func` once per args tuple after commit, in one broker transaction.

    Outside a transaction the ORM broker closes stale connections before each insert, which
    with CONN_MAX_AGE=0 means a new database connection per task; a batch pays that once.
    """

    def enqueue_all():
        with transaction.atomic():
            for args in args_list:
                _enqueue(func, *args)

    transaction.on_commit(enqueue_all)
