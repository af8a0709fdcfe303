"""The one after-commit chokepoint for background work.

Enqueueing inside a transaction that later rolls back would run a task for something that
never happened; enqueueing before commit lets a fast worker read rows that are not there
yet. So every task is handed to django-q2 only once the surrounding transaction commits
(outside a transaction, `on_commit` runs it at once).
"""

from django.db import transaction
from django_q.tasks import async_task


def enqueue_on_commit(func: str, *args, **kwargs) -> None:
    """Queue `func` (a dotted path) with django-q2 after the current transaction commits."""
    transaction.on_commit(lambda: async_task(func, *args, **kwargs))


def enqueue_many_on_commit(func: str, args_list: list[tuple]) -> None:
    """Queue `func` once per args tuple after commit, in one broker transaction.

    Outside a transaction the ORM broker closes stale connections before each insert, which
    with CONN_MAX_AGE=0 means a new database connection per task; a batch pays that once.
    """

    def enqueue_all():
        with transaction.atomic():
            for args in args_list:
                async_task(func, *args)

    transaction.on_commit(enqueue_all)
