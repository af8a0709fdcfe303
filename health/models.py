"""A stall of the background workers, kept so its alert goes out once and is closed once."""

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


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
