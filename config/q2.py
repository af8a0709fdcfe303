"""The one after-commit chokepoint for background work.

Enqueueing inside a transaction that later rolls back would run a task for something that
never happened; enqueueing before commit lets a fast worker read rows that are not there
yet. So every task is handed to django-q2 only once the surrounding transaction commits
(outside a transaction, `on_commit` runs it at once).

By then the work is saved, so a broker that refuses the task (Redis stopped or hung, the
ORM broker's database gone) must not turn the caller's success into a 500, nor keep the
transaction's later after-commit work from running: the failure is logged and swallowed,
and the row the task was for waits in a state its sweeper re-drives (`refunds.tasks`,
`notifications.tasks`, `risk.tasks`). A caller with nothing saved for a sweeper to find
reads the answer from the returned `Queued`.
"""

import logging
import threading
from dataclasses import dataclass

from django.db import DatabaseError, connections, transaction
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.tasks import async_task
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

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


@dataclass
class Queued:
    """What became of an after-commit enqueue: None until the transaction commits, then
    True if the broker took the task, False if it refused it (logged)."""

    ok: bool | None = None


def _hand_over(queued: Queued, enqueue, describe) -> None:
    """Run `enqueue`; a broker that refuses it is logged (naming `describe()`), not raised.

    With tasks run inline (SYNC: tests, scripts) there is no broker to lose them, and what
    can raise is the task's own bookkeeping: that is raised as before."""
    try:
        enqueue()
    except Exception as exc:  # noqa: BLE001 - whatever the broker raises, the saved work stands
        if Conf.SYNC:
            raise
        queued.ok = False
        if isinstance(exc, RedisError | DatabaseError):
            # The broker is down or unreachable: expected in an outage, one line per enqueue.
            logger.warning("could not queue %s, left to its sweeper: %s: %s", describe(), type(exc).__name__, exc)
        else:
            logger.exception("could not queue %s, left to its sweeper", describe())
    else:
        queued.ok = True


def enqueue_on_commit(func: str, *args, **kwargs) -> Queued:
    """Queue `func` (a dotted path) with django-q2 after the current transaction commits.

    A broker that refuses it is logged, never raised; the returned `Queued` says which
    (outside a transaction it has run by the time this returns)."""
    queued = Queued()
    transaction.on_commit(lambda: _hand_over(queued, lambda: _enqueue(func, *args, **kwargs), lambda: f"{func}{args!r}"))
    return queued


def enqueue_swept_on_commit(func: str, *args) -> Queued:
    """`enqueue_on_commit` for work that a sweeper re-drives from its own saved row if the
    task is lost (a request left `submitted`): on the ORM broker the task's row is committed
    without waiting for it to reach the disk, so the caller does not wait for a second WAL
    flush after its own. A database crash can then lose the task row, never the caller's
    rows (their commit was flushed first), and the sweeper finds those."""
    queued = Queued()
    transaction.on_commit(lambda: _hand_over(queued, lambda: _enqueue_unflushed(func, *args), lambda: f"{func}{args!r}"))
    return queued


def _enqueue_unflushed(func: str, *args):
    if _broker() is not None or not Conf.ORM or Conf.SYNC:
        return _enqueue(func, *args)
    # In a transaction of its own the ORM broker also skips `close_old_connections`, which
    # would health-check the connection again (a `SELECT 1`) that this request just used.
    with transaction.atomic(using=Conf.ORM):
        db = connections[Conf.ORM]
        if db.vendor == "postgresql":
            with db.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        return async_task(func, *args)


def enqueue_many_on_commit(func: str, args_list: list[tuple]) -> Queued:
    """Queue `func` once per args tuple after commit, in one broker transaction.

    Outside a transaction the ORM broker closes stale connections before each insert, which
    with CONN_MAX_AGE=0 means a new database connection per task; a batch pays that once.
    The first refusal ends the batch (logged): on the ORM broker its transaction queued
    none of it, on Redis the ones before it went out; a broker that is down would only
    refuse the rest one timeout at a time. The sweeper re-drives every row that was lost.
    """

    def enqueue_all():
        with transaction.atomic():
            for args in args_list:
                _enqueue(func, *args)

    def describe():
        more = f" and {len(args_list) - 3} more" if len(args_list) > 3 else ""
        return f"{func} for {', '.join(map(repr, args_list[:3]))}{more}"

    queued = Queued()
    transaction.on_commit(lambda: _hand_over(queued, enqueue_all, describe))
    return queued
