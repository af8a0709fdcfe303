from auditlog.models import LogEntry
from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AuditEntry(LogEntry):
    """The audit log as staff read it: auditlog's one table, under our name and permissions."""

    class Meta:
        proxy = True
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")

    def __str__(self) -> str:
        return f"AU-{self.pk}: {self.object_repr}"


class PendingChange(models.Model):
    """A raise of a money limit, saved but not applied until a second admin approves it.

    `changes` is `{field: [old, new]}` as the proposer saw it; until approval the object keeps
    its old values, so every decision taken meanwhile uses the old limit.
    """

    class State(models.TextChoices):
        PENDING = "pending", _("Waiting for approval")
        APPROVED = "approved", _("Approved and applied")
        REJECTED = "rejected", _("Rejected")

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, verbose_name=_("kind"))
    object_id = models.BigIntegerField(_("object"))
    target = GenericForeignKey("content_type", "object_id")
    object_repr = models.CharField(_("object"), max_length=200)
    changes = models.JSONField(_("changes"))
    note = models.CharField(_("note"), max_length=200, blank=True)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.PENDING)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("proposed by")
    )
    proposed_at = models.DateTimeField(_("proposed at"), default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_note = models.CharField(_("decision note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("change waiting for approval")
        verbose_name_plural = _("changes waiting for approval")
        permissions = [("approve_pendingchange", _("Can approve or reject a raise of a money limit"))]
        constraints = [
            # Four eyes, held by the database too: nobody decides their own proposal.
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=F("proposed_by")) | Q(state="rejected"),
                name="pending_change_second_person",
            ),
            models.CheckConstraint(
                condition=Q(state="pending", decided_by__isnull=True, decided_at__isnull=True)
                | (~Q(state="pending") & Q(decided_at__isnull=False)),
                name="pending_change_decided_when_done",
            ),
            # One raise waits per object at a time, so two approvals can't race each other.
            models.UniqueConstraint(
                fields=["content_type", "object_id"], condition=Q(state="pending"), name="one_pending_change_per_object"
            ),
        ]
        indexes = [models.Index(fields=["state", "proposed_at"], name="pending_change_queue")]

    def __str__(self) -> str:
        return f"PC-{self.pk}: {self.object_repr}"
