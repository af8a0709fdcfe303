from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class StuckWork(models.Model):
    """A row a sweeper failed on: how often, why, and whether it is parked.

    A parked row is left out of its sweeper's runs, so one bad row never blocks the rows
    behind it; it waits here, with its error, until a person sends it back (`retry`).
    """

    sweeper = models.CharField(_("sweeper"), max_length=100)
    object_id = models.BigIntegerField(_("row"))
    failures = models.PositiveIntegerField(_("failures"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    first_failed_at = models.DateTimeField(_("first failed at"), default=timezone.now)
    last_failed_at = models.DateTimeField(_("last failed at"), default=timezone.now)
    parked_at = models.DateTimeField(_("parked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("stuck work")
        verbose_name_plural = _("stuck work")
        constraints = [models.UniqueConstraint(fields=["sweeper", "object_id"], name="stuck_work_unique")]

    def __str__(self) -> str:
        return f"{self.sweeper} #{self.object_id}"


class WorkerStall(models.Model):
    """From the first check that saw queued work not moving to the first that saw it move."""

    queue = models.CharField(_("queue"), max_length=100)
    started_at = models.DateTimeField(_("seen at"), default=timezone.now)
    queued = models.PositiveIntegerField(_("tasks waiting"))
    oldest_queued_at = models.DateTimeField(_("oldest task queued at"), null=True, blank=True)
    last_finished_at = models.DateTimeField(_("last task finished at"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)

    class Meta:
        verbose_name = _("worker stall")
        verbose_name_plural = _("worker stalls")
        constraints = [
            # The "once": checks racing each other (every web worker's /health/, the
            # supervisor's check_workers) open one stall per queue, and alert once.
            models.UniqueConstraint(fields=["queue"], condition=Q(resolved_at__isnull=True), name="one_open_stall_per_queue"),
        ]

    def __str__(self) -> str:
        return f"WS-{self.pk}: {self.queue} since {self.started_at:%Y-%m-%d %H:%M}"
