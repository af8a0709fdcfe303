"""The outbox: every message to a customer or to staff is a row first.

A row is written in the same transaction as the state change that causes it and sent by a
background task after commit, so a rolled-back change never sends anything and a crash
never loses a message.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.template import Engine, TemplateSyntaxError
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
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notifications",
        verbose_name=_("recipient user"),
    )
    refund = models.ForeignKey(
        "refunds.RefundRequest",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notifications",
        verbose_name=_("refund"),
    )
    context = models.JSONField(_("context"), default=dict, blank=True)
    # Rendered when the row is written, so the text says what was true at the event even if
    # the refund moves on before a retry goes out.
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body = models.TextField(_("message"), blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), default=timezone.now)
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    provider_message_id = models.CharField(_("provider message id"), max_length=100, blank=True)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["channel", "recipient", "read_at"]),
        ]

    def __str__(self) -> str:
        return f"N-{self.pk}: {self.event} → {self.recipient}"

    @property
    def idempotency_key(self) -> str:
        """Sent with every attempt, so a provider that already accepted it does not send it again."""
        return f"refund-desk-notification-{self.pk}"


class StaffMessage(Notification):
    """The staff inbox: the same rows, shown to the users of the role they are addressed to."""

    class Meta:
        proxy = True
        verbose_name = _("inbox message")
        verbose_name_plural = _("inbox")


class StaffInboxRead(models.Model):
    """A staff message addressed to a role is read per user, not once for the whole group."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="reads", verbose_name=_("notification"))
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("user"))
    read_at = models.DateTimeField(_("read at"), default=timezone.now)

    class Meta:
        verbose_name = _("inbox read mark")
        verbose_name_plural = _("inbox read marks")
        constraints = [models.UniqueConstraint(fields=["notification", "user"], name="staff_inbox_read_once")]

    def __str__(self) -> str:
        return f"N-{self.notification_id} read by {self.user_id}"


# The language a MessageTemplate is written in: Django's templates without HTML escaping (SMS
# and inbox text are plain text). Here, not in rendering.py, so that the model can check a
# template compiles without importing the module that imports it.
_ENGINE = Engine(autoescape=False)


def compile_text(text: str):
    return _ENGINE.from_string(text or "")


class MessageTemplate(models.Model):
    """The text of one event on one channel in one language, with `{{ placeholders }}`."""

    event = models.CharField(_("event"), max_length=50)
    channel = models.CharField(_("channel"), max_length=10, choices=Notification.Channel.choices)
    language = models.CharField(_("language"), max_length=10, choices=settings.LANGUAGES)
    subject = models.CharField(_("subject"), max_length=200, blank=True, help_text=_("E-mail and staff inbox only."))
    body = models.TextField(_("message"))
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")
        constraints = [
            models.UniqueConstraint(fields=["event", "channel", "language"], name="message_template_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.event} / {self.channel} / {self.language}"

    def clean(self):
        for field in ("subject", "body"):
            try:
                compile_text(getattr(self, field))
            except TemplateSyntaxError as exc:
                raise ValidationError({field: str(exc)})


class SlaLimit(models.Model):
    """How long a request may wait in a state before its role is alerted, then escalated."""

    state = models.CharField(_("state"), max_length=20, unique=True)
    role = models.CharField(_("responsible role"), max_length=20)
    alert_after_minutes = models.PositiveIntegerField(_("alert after (minutes)"))
    escalate_after_minutes = models.PositiveIntegerField(_("escalate after (minutes)"))
    escalate_to = models.CharField(
        _("escalate to role"), max_length=20, blank=True, help_text=_("Empty: the responsible role again.")
    )
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("SLA limit")
        verbose_name_plural = _("SLA limits")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(escalate_after_minutes__gt=models.F("alert_after_minutes")),
                name="sla_escalation_after_alert",
            )
        ]

    def __str__(self) -> str:
        return f"SLA {self.state}: {self.alert_after_minutes}/{self.escalate_after_minutes} min"


class SlaBreach(models.Model):
    """One row per request, stay in a state, and level: the alert goes out once, not every sweep."""

    class Level(models.TextChoices):
        ALERT = "alert", _("Alert")
        ESCALATION = "escalation", _("Escalation")

    refund = models.ForeignKey(
        "refunds.RefundRequest", on_delete=models.CASCADE, related_name="sla_breaches", verbose_name=_("refund")
    )
    state = models.CharField(_("state"), max_length=20)
    # The stay in the state is identified by when it began: leaving and re-entering the state
    # is a new stay with its own limit.
    state_changed_at = models.DateTimeField(_("state changed at"))
    level = models.CharField(_("level"), max_length=12, choices=Level.choices)
    role = models.CharField(_("alerted role"), max_length=20)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("SLA breach")
        verbose_name_plural = _("SLA breaches")
        constraints = [
            models.UniqueConstraint(fields=["refund", "state", "state_changed_at", "level"], name="sla_breach_once"),
        ]

    def __str__(self) -> str:
        return f"{self.level} {self.state} RF-{self.refund_id:06d}"
