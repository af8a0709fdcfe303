"""The outbox: every message to a customer or to staff is a row first.

A row is written in the same transaction as the state change that causes it and sent by a
background task after commit, so a rolled-back change never sends anything and a crash
never loses a message.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Notification(models.Model):
    class Channel(models.TextChoices):
        SMS = "sms", _("SMS")
        EMAIL = "email", _("E-mail")
        STAFF = "staff", _("Staff inbox")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        DEAD = "dead", _("Dead")

    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    event = models.CharField(_("event"), max_length=50)
    language = models.CharField(_("language"), max_length=10, default="zh-hans")
    # The customer's phone or e-mail, or the role a staff message is for.
    recipient = models.CharField(_("recipient"), max_length=200)
    recipient_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="notifications"
    )
    refund = models.ForeignKey(
        "refunds.RefundRequest", on_delete=models.CASCADE, null=True, blank=True, related_name="notifications"
    )
    context = models.JSONField(default=dict, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    provider_message_id = models.CharField(max_length=100, blank=True)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["channel", "recipient", "read_at"]),
        ]

    def __str__(self) -> str:
        return f"N-{self.pk}: {self.event} → {self.recipient}"
