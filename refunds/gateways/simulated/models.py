from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

MONEY = {"max_digits": 14, "decimal_places": 2}


class GatewayLedgerEntry(models.Model):
    """The simulated gateway's own books: what it actually paid out.

    Keyed by the caller's idempotency key like a real gateway, so a repeated call answers
    the first result instead of paying again.
    """

    idempotency_key = models.CharField(_("idempotency key"), max_length=64, unique=True)
    payment_reference = models.CharField(_("payment reference"), max_length=100)
    amount = models.DecimalField(_("amount"), **MONEY)
    currency = models.CharField(_("currency"), max_length=3)
    reference = models.CharField(_("reference"), max_length=64, unique=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("simulated gateway ledger entry")
        verbose_name_plural = _("simulated gateway ledger")
        indexes = [models.Index(fields=["created_at"], name="sim_ledger_created_idx")]

    def __str__(self) -> str:
        return self.reference


class SimulatedGatewayControl(models.Model):
    """Tells the simulated gateway how to misbehave, across processes (tests, demo)."""

    class Mode(models.TextChoices):
        OK = "ok", _("Succeed")
        FAIL = "fail", _("Decline (temporary)")
        DECLINE_PERMANENT = "decline_permanent", _("Decline for good (card closed)")
        TIMEOUT = "timeout", _("Time out before paying")
        TIMEOUT_AFTER_SUCCESS = "timeout_after_success", _("Pay, then time out")

    class StatusMode(models.TextChoices):
        OK = "ok", _("Answer truthfully")
        TIMEOUT = "timeout", _("Time out")
        PROCESSING = "processing", _("Say it is still processing")

    mode = models.CharField(_("mode"), max_length=30, choices=Mode.choices, default=Mode.OK)
    # How many refund calls the mode applies to before the gateway behaves again (0 = every call).
    remaining = models.PositiveIntegerField(_("remaining"), default=0)
    delay_ms = models.PositiveIntegerField(_("delay ms"), default=0)
    # How the refund query (`refund_status`) answers; every query, until changed.
    status_mode = models.CharField(_("status query"), max_length=20, choices=StatusMode.choices, default=StatusMode.OK)

    class Meta:
        verbose_name = _("simulated gateway control")
        verbose_name_plural = _("simulated gateway control")

    def __str__(self) -> str:
        return self.mode
