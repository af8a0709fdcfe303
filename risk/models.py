"""Risk: a profile per customer, the weights that turn it into a score, and the watch list.

The profile is derived data: `risk.profiles` rewrites it with one set-based statement, so
nothing here is edited by hand except the settings (each change logged) and the watch list.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from orders.models import MONEY, ZERO, Customer


class RiskLevel(models.TextChoices):
    LOW = "low", _("Low")
    MEDIUM = "medium", _("Medium")
    HIGH = "high", _("High")


class RiskProfile(models.Model):
    """What the scorer sees about one customer. Windows are those of `RiskSettings`."""

    customer = models.OneToOneField(
        Customer, on_delete=models.CASCADE, primary_key=True, related_name="risk_profile", verbose_name=_("customer")
    )
    orders_90d = models.PositiveIntegerField(_("orders 90d"), default=0)
    refunded_orders_90d = models.PositiveIntegerField(_("refunded orders 90d"), default=0)
    requests_90d = models.PositiveIntegerField(_("requests 90d"), default=0)
    paid_amount_90d = models.DecimalField(_("paid amount 90d"), default=ZERO, **MONEY)
    # Refunded plus still claimed by open requests: at intake the money has not moved yet.
    refund_amount_90d = models.DecimalField(_("refund amount 90d"), default=ZERO, **MONEY)
    bulk_orders = models.PositiveIntegerField(_("bulk orders"), default=0)
    bulk_orders_mostly_returned = models.PositiveIntegerField(_("bulk orders mostly returned"), default=0)
    distinct_addresses_30d = models.PositiveIntegerField(_("distinct addresses 30d"), default=0)
    address_changes_30d = models.PositiveIntegerField(_("address changes 30d"), default=0)
    requests_24h = models.PositiveIntegerField(_("requests 24h"), default=0)
    requests_7d = models.PositiveIntegerField(_("requests 7d"), default=0)
    requests_total = models.PositiveIntegerField(_("requests total"), default=0)
    not_received_requests = models.PositiveIntegerField(_("not received requests"), default=0)
    dispute_requests = models.PositiveIntegerField(_("dispute requests"), default=0)
    account_created_at = models.DateTimeField(_("account created at"), null=True, blank=True)
    first_order_at = models.DateTimeField(_("first order at"), null=True, blank=True)
    first_refund_at = models.DateTimeField(_("first refund at"), null=True, blank=True)
    shared_phone_accounts = models.PositiveIntegerField(_("shared phone accounts"), default=0)
    shared_address_accounts = models.PositiveIntegerField(_("shared address accounts"), default=0)
    abusive_verdicts = models.PositiveIntegerField(_("abusive verdicts"), default=0)
    computed_at = models.DateTimeField(_("computed at"), default=timezone.now)

    class Meta:
        verbose_name = _("risk profile")
        verbose_name_plural = _("risk profiles")

    def __str__(self) -> str:
        return f"risk:{self.customer_id}"


class RiskSettings(models.Model):
    """Weights (points added to the score) and thresholds; one row (pk=1).

    Changed only through `risk.services.risk_settings_update`; the audit log keeps every
    change, old → new.
    """

    rate_window_days = models.PositiveSmallIntegerField(_("refund-rate window (days)"), default=90)
    churn_window_days = models.PositiveSmallIntegerField(_("address-churn window (days)"), default=30)

    weight_refund_rate = models.PositiveSmallIntegerField(_("weight: refund rate"), default=35)
    refund_rate_min_orders = models.PositiveSmallIntegerField(_("refund rate counts from (orders)"), default=2)
    refund_rate_threshold = models.DecimalField(
        _("refund rate that counts fully"), max_digits=4, decimal_places=2, default=Decimal("0.60")
    )
    weight_buy_many_refund_most = models.PositiveSmallIntegerField(_("weight: buy many, refund most"), default=55)
    buy_many_min_orders = models.PositiveSmallIntegerField(_("buy-many pattern from (orders)"), default=2)
    weight_address_churn = models.PositiveSmallIntegerField(_("weight: address churn"), default=55)
    churn_min_addresses = models.PositiveSmallIntegerField(_("churn from distinct addresses"), default=4)
    churn_min_changes = models.PositiveSmallIntegerField(_("churn from address changes"), default=3)
    weight_velocity = models.PositiveSmallIntegerField(_("weight: burst of requests"), default=30)
    burst_24h = models.PositiveSmallIntegerField(_("burst from requests in 24 h"), default=3)
    burst_7d = models.PositiveSmallIntegerField(_("burst from requests in 7 days"), default=5)
    weight_not_received = models.PositiveSmallIntegerField(_("weight: 'not received' share"), default=45)
    weight_dispute = models.PositiveSmallIntegerField(_("weight: dispute-reason share"), default=10)
    reason_min_requests = models.PositiveSmallIntegerField(_("reason shares count from (requests)"), default=3)
    weight_new_account = models.PositiveSmallIntegerField(_("weight: new account refunding fast"), default=10)
    weight_shared_identifiers = models.PositiveSmallIntegerField(_("weight: shared phone or address"), default=60)
    shared_min_accounts = models.PositiveSmallIntegerField(_("linked from other accounts"), default=2)
    weight_confirmed_abuse = models.PositiveSmallIntegerField(_("weight: confirmed abuse"), default=50)

    medium_from = models.PositiveSmallIntegerField(_("medium level from score"), default=40)
    high_from = models.PositiveSmallIntegerField(_("high level above score"), default=70)
    watchlist_days = models.PositiveSmallIntegerField(_("automatic watch-list entries last (days)"), default=90)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("risk settings")
        verbose_name_plural = _("risk settings")

    def __str__(self) -> str:
        return str(_("risk settings"))

    @classmethod
    def current(cls) -> "RiskSettings":
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj


class WatchlistEntry(models.Model):
    class Source(models.TextChoices):
        AUTO = "auto", _("Automatic")
        MANUAL = "manual", _("By hand")

    class Reason(models.TextChoices):
        BUY_MANY_REFUND_MOST = "buy_many_refund_most", _("Buys many, refunds most")
        ADDRESS_CHURN = "address_churn", _("Frequent address changes")
        SHARED_IDENTIFIERS = "shared_identifiers", _("Phone or address behind several accounts")
        BURST = "burst", _("Burst of refund requests")
        MANUAL = "manual", _("Added by hand")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="watchlist_entries", verbose_name=_("customer"))
    reason = models.CharField(_("reason"), max_length=30, choices=Reason.choices)
    evidence = models.JSONField(_("evidence"), default=dict, blank=True)
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("added by")
    )
    added_at = models.DateTimeField(_("added at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    removed_at = models.DateTimeField(_("removed at"), null=True, blank=True)
    removed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("removed by")
    )
    note = models.TextField(_("note"), blank=True)

    class Meta:
        verbose_name = _("watch-list entry")
        verbose_name_plural = _("watch list")
        indexes = [models.Index(fields=["customer", "removed_at"])]
        permissions = [("manage_watchlist", _("Can add and remove watch-list entries"))]

    def __str__(self) -> str:
        return f"WL-{self.pk:05d}" if self.pk else "WL-new"

    @staticmethod
    def active_q(now) -> Q:
        return Q(removed_at__isnull=True) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))


class SimulationTruth(models.Model):
    """The labels of `simulate_abuse`, kept apart from anything the scorer reads."""

    customer = models.OneToOneField(
        Customer, on_delete=models.CASCADE, primary_key=True, related_name="+", verbose_name=_("customer")
    )
    kind = models.CharField(_("kind"), max_length=30)
    is_abuser = models.BooleanField(_("is abuser"))

    class Meta:
        verbose_name = _("simulation label")
        verbose_name_plural = _("simulation labels")

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.kind}"
