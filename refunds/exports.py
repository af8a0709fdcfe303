"""Finance's big spreadsheets, written in the background.

A list export of up to `EXPORT_INLINE_MAX_ROWS` rows is written within the request, as
before. A bigger one would hold a web worker past gunicorn's timeout (a million payouts
take minutes as XLSX), so the screen records an `Export` with its filter and a django-q2
task writes the file; finance downloads it from *Exports* when it is ready. The row keeps
the parsed filter, and the task reads the rows through the same selector as the screen
(`refunds.selectors_exports`), as the requesting user, so a background export holds exactly
what the screen would have written.
"""

import logging
import tempfile
from datetime import timedelta

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from config.pii import redact
from config.q2 import enqueue_on_commit
from refunds import selectors_exports
from refunds.models import Export
from refunds.resources import WRITERS, PayoutResource, RefundRequestResource

logger = logging.getLogger(__name__)

# A spreadsheet's sheet has 1,048,576 rows, the header included; Excel refuses a bigger file.
XLSX_MAX_ROWS = 1_048_575


def _more_than(queryset, limit: int) -> bool:
    """Whether the queryset has more than `limit` rows, counting at most one past it."""
    return queryset.order_by().values("pk")[: limit + 1].count() > limit


def over_inline_limit(queryset) -> bool:
    """Whether the rows are too many to write within a request (a million-row filter costs
    no full COUNT(*))."""
    return _more_than(queryset, settings.EXPORT_INLINE_MAX_ROWS)


def export_request(*, user, what: str, fmt: str, filters: dict) -> Export:
    """Record the export with its parsed filter (`refunds.selectors_exports`) and queue its
    task once the row is committed."""
    if fmt not in WRITERS:
        raise ValueError(f"Unknown export format {fmt!r}.")
    with transaction.atomic():
        export = Export.objects.create(requested_by=user, what=what, fmt=fmt, filters=filters)
        export_queue(export_id=export.pk)
    return export


def export_queue(*, export_id: int) -> None:
    """Queue the export's task after commit (again, for `sweep_exports`, if it was lost). The
    task may outlive Q_RETRY: a redelivery or a second task finds the row claimed and does
    nothing."""
    enqueue_on_commit("refunds.tasks.export_write_task", export_id, timeout=settings.EXPORT_TIMEOUT)


def lost_exports(*, now=None):
    """Exports still queued two minutes after they were asked for: their task was lost (the
    broker refused it), or waits behind others (a second task is then a no-op)."""
    now = now or timezone.now()
    return Export.objects.filter(state=Export.State.QUEUED, created_at__lt=now - timedelta(minutes=2))


RESOURCES = {Export.What.PAYOUTS: PayoutResource, Export.What.REFUND_REQUESTS: RefundRequestResource}


def export_write(*, export_id: int) -> str:
    """Write a queued export's file. Safe to run twice: only the run that claims the queued
    row writes; whatever goes wrong is recorded on the row for the user to read."""
    claimed = Export.objects.filter(pk=export_id, state=Export.State.QUEUED).update(
        state=Export.State.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return "not queued"
    export = Export.objects.select_related("requested_by").get(pk=export_id)
    try:
        # The same selector as the screen's, as the requester now: one who may no longer
        # export gets a failed row, not the file.
        queryset = selectors_exports.export_rows(what=export.what, user=export.requested_by, filters=export.filters)
        resource = RESOURCES[export.what]()
        if export.fmt == Export.Format.XLSX and _more_than(queryset, XLSX_MAX_ROWS):
            raise ValueError(
                f"More than {XLSX_MAX_ROWS:,} rows: more than a spreadsheet holds. Export CSV, or narrow the filter."
            )
        with tempfile.TemporaryFile() as tmp:
            rows = WRITERS[export.fmt](resource, queryset, tmp)
            tmp.seek(0)
            export.file.save(export.filename, File(tmp), save=False)
    except Exception as exc:  # recorded on the row: the user sees why, not "being written" forever
        logger.exception("export %s failed", export_id)
        Export.objects.filter(pk=export_id).update(
            state=Export.State.FAILED, error=redact(str(exc))[:1000] or type(exc).__name__, finished_at=timezone.now()
        )
        return Export.State.FAILED
    Export.objects.filter(pk=export_id).update(
        state=Export.State.DONE, rows=rows, file=export.file.name, finished_at=timezone.now()
    )
    return Export.State.DONE


def exports_clean(*, now=None) -> int:
    """Delete exports (and their files) older than EXPORT_KEEP_DAYS, and fail the ones whose
    task died while writing (a worker killed past EXPORT_TIMEOUT). Returns how many went."""
    now = now or timezone.now()
    Export.objects.filter(
        state=Export.State.RUNNING, started_at__lt=now - timedelta(seconds=settings.EXPORT_TIMEOUT + 60)
    ).update(
        state=Export.State.FAILED,
        error=f"Stopped: it ran longer than {settings.EXPORT_TIMEOUT} seconds. Narrow the filter and export again.",
        finished_at=now,
    )
    deleted, _ = Export.objects.filter(created_at__lt=now - timedelta(days=settings.EXPORT_KEEP_DAYS)).delete()
    return deleted


def delete_file(sender, instance: Export, **kwargs) -> None:
    """post_delete: an export's file goes with its row, once the deletion commits."""
    if instance.file:
        name, storage = instance.file.name, instance.file.storage
        transaction.on_commit(lambda: storage.delete(name))
