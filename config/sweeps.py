"""Sweepers that one bad row cannot stop.

A sweeper re-drives rows that a lost task or a crash left behind. Each row is handled on its
own, in the order the caller gives (always a stable one: by pk or by due time, then pk), with
its own error handling: a row that raises is logged and counted in `StuckWork`, and after
`SWEEP_PARK_AFTER` failures in a row it is parked — left out of later runs, with its error
visible in the admin — instead of being retried at the head of every run forever.
"""

import logging
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from config.models import StuckWork
from config.pii import redact

logger = logging.getLogger(__name__)


@dataclass
class SweepReport:
    sweeper: str
    done: int = 0
    failed: int = 0
    # (row id, error) of the rows parked by this run.
    parked: list[tuple[int, str]] = field(default_factory=list)


def without_parked(sweeper: str, queryset: QuerySet) -> QuerySet:
    """`queryset` without the rows `sweeper` has parked."""
    return queryset.exclude(pk__in=StuckWork.objects.filter(sweeper=sweeper, parked_at__isnull=False).values("object_id"))


def sweep(sweeper: str, ids: Iterable[int], handle: Callable[[int], object]) -> SweepReport:
    """Call `handle(id)` for each id, each on its own: a failure is recorded and the run goes on."""
    ids = list(ids)
    report = SweepReport(sweeper)
    failing = set(StuckWork.objects.filter(sweeper=sweeper, object_id__in=ids).values_list("object_id", flat=True))
    for pk in ids:
        try:
            handle(pk)
        except Exception as exc:  # noqa: BLE001 - whatever one row raises, the rest still run
            logger.exception("sweeper %s failed on row %s", sweeper, pk)
            report.failed += 1
            parked = _record_failure(sweeper, pk, exc)
            if parked:
                report.parked.append((pk, _describe(exc)))
        else:
            report.done += 1
            if pk in failing:
                StuckWork.objects.filter(sweeper=sweeper, object_id=pk, parked_at__isnull=True).delete()
    return report


def _describe(exc: BaseException) -> str:
    # Shown in the admin and sent to the administrators: masked like a log line.
    return redact("".join(traceback.format_exception_only(type(exc), exc)).strip())[:2000]


def _record_failure(sweeper: str, pk: int, exc: BaseException) -> bool:
    """Count the failure; park the row once it failed `SWEEP_PARK_AFTER` times. True if parked now."""
    now = timezone.now()
    error = _describe(exc)
    with transaction.atomic():
        row, created = StuckWork.objects.select_for_update().get_or_create(
            sweeper=sweeper,
            object_id=pk,
            defaults={"failures": 1, "last_error": error, "first_failed_at": now, "last_failed_at": now},
        )
        if not created:
            StuckWork.objects.filter(pk=row.pk).update(failures=F("failures") + 1, last_error=error, last_failed_at=now)
            row.refresh_from_db(fields=["failures", "parked_at"])
        if row.parked_at is None and row.failures >= settings.SWEEP_PARK_AFTER:
            StuckWork.objects.filter(pk=row.pk).update(parked_at=now)
            logger.error("sweeper %s parked row %s after %s failures: %s", sweeper, pk, row.failures, error)
            return True
    return False


def unpark(*, ids: list[int]) -> int:
    """Send parked rows back to their sweepers (a person fixed the cause): the next run tries them."""
    return StuckWork.objects.filter(pk__in=ids).delete()[0]
