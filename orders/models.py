"""Orders as the channels report them: who bought what, how it was paid and shipped.

Money is `DecimalField` only. The refund invariants (refunded plus held never exceeds what
was paid, per line and per order) are check constraints, so no code path can break them.
"""

import hashlib
from decimal import Decimal

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Right, Round, Upper
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, FSMModelMixin, transition

MONEY = {"max_digits": 14, "decimal_places": 2}
ZERO = Decimal("0.00")


def column_max(model: type[models.Model], field_name: str) -> Decimal:
    """The largest value a DecimalField column stores (999999999999.99 for MONEY), read from
    the model so that a bound checked before writing can't drift from the column."""
    field = model._meta.get_field(field_name)
    return Decimal(10) ** (field.max_digits - field.decimal_places) - Decimal(10) ** -field.decimal_places


class Channel(models.Model):
    class Kind(models.TextChoices):
        MARKETPLACE = "marketplace", _("Marketplace")
        MINI_PROGRAM = "mini_program", _("Mini-program")
        WEB_STORE = "web_store", _("Web store")
        SUPPORT_CHAT = "support_chat", _("Support chat")

    name = models.CharField(_("name"), max_length=100, unique=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("channel")
        verbose_name_plural = _("channels")

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()


class ChannelKey(models.Model):
    """One of a channel's API keys. Only a SHA-256 of the key is stored; the key itself is
    printed once when it is issued. A channel holds at most two (one per slot), so a key can
    be rotated without a gap: issue the second, move the client to it, let the first expire."""

    SLOTS = (1, 2)

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="keys", verbose_name=_("channel"))
    slot = models.PositiveSmallIntegerField(_("slot"), editable=False)
    key_hash = models.CharField(_("key hash"), max_length=64, unique=True, editable=False)
    key_prefix = models.CharField(_("key prefix"), max_length=12, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    # Written at most once a minute per key (orders.api.authentication), not on every request.
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("channel key")
        verbose_name_plural = _("channel keys")
        constraints = [
            models.UniqueConstraint(fields=["channel", "slot"], name="channel_key_two_slots_per_channel"),
            models.CheckConstraint(condition=Q(slot__in=(1, 2)), name="channel_key_slot_is_1_or_2"),
        ]

    def __str__(self) -> str:
        return f"{self.channel_id}:{self.key_prefix}…"

    def is_expired(self, now=None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())


class Carrier(models.Model):
    code = models.SlugField(_("code"), max_length=30, unique=True)
    name = models.CharField(_("name"), max_length=100, blank=True)
    # HMAC secret for the tracking webhook. It must be readable to verify signatures, so it
    # is stored as is; it is shown once at creation and never in the admin.
    secret = models.CharField(_("secret"), max_length=128, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("carrier")
        verbose_name_plural = _("carriers")

    def __str__(self) -> str:
        return self.code


class Customer(models.Model):
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="customers", verbose_name=_("channel"))
    external_id = models.CharField(_("external id"), max_length=64)
    name = models.CharField(_("name"), max_length=200, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True, db_index=True)
    email = models.EmailField(_("email"), blank=True)
    language = models.CharField(_("language"), max_length=10, default="zh-hans")
    sms_opt_out = models.BooleanField(_("SMS opt-out"), default=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    # Set by `customer_anonymize`: the personal data is gone, the money records stay.
    anonymized_at = models.DateTimeField(_("anonymized at"), null=True, blank=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        constraints = [models.UniqueConstraint(fields=["channel", "external_id"], name="customer_unique_per_channel")]
        # The staff search (orders.selectors): a customer by id in any channel, by e-mail in
        # any case, by the last four digits of the phone, by part of the name. The name's
        # trigram index exists on PostgreSQL only (migration 0007); SQLite reads the table.
        indexes = [
            models.Index(fields=["external_id"], name="customer_external_id_idx"),
            models.Index(Upper("email"), name="customer_email_upper_idx"),
            models.Index(Right("phone", 4), name="customer_phone_last4_idx"),
            GinIndex(OpClass(Upper("name"), name="gin_trgm_ops"), name="customer_name_trgm_idx"),
        ]
        permissions = [("anonymize_customer", _("Can erase a customer's personal data"))]

    def __str__(self) -> str:
        return f"{self.name or self.external_id} ({self.channel_id}:{self.external_id})"


class Address(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="addresses", verbose_name=_("customer"))
    name = models.CharField(_("name"), max_length=200, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    line1 = models.CharField(_("address"), max_length=300)
    city = models.CharField(_("city"), max_length=100, blank=True)
    postcode = models.CharField(_("postcode"), max_length=20, blank=True)
    country = models.CharField(_("country"), max_length=2, default="CN")
    # Normalised hash of the address, to find the same address behind several accounts.
    fingerprint = models.CharField(_("fingerprint"), max_length=64, db_index=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("address")
        verbose_name_plural = _("addresses")

    def __str__(self) -> str:
        return ", ".join(p for p in [self.line1, self.city, self.postcode, self.country] if p)

    @staticmethod
    def fingerprint_of(*, line1: str, city: str = "", postcode: str = "", country: str = "") -> str:
        norm = "|".join(" ".join(str(p).lower().split()) for p in (line1, city, postcode, country))
        return hashlib.sha256(norm.encode()).hexdigest()


class Order(FSMModelMixin, models.Model):
    class State(models.TextChoices):
        PENDING_PAYMENT = "pending_payment", _("Pending payment")
        PAID = "paid", _("Paid")
        SHIPPED = "shipped", _("Shipped")
        DELIVERED = "delivered", _("Delivered")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")

    class RefundStatus(models.TextChoices):
        NONE = "none", _("None")
        PARTIAL = "partial", _("Partial")
        FULL = "full", _("Full")

    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="orders", verbose_name=_("channel"))
    number = models.CharField(_("order number"), max_length=64)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders", verbose_name=_("customer"))
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    placed_at = models.DateTimeField(_("placed at"))
    state = FSMField(_("state"), default=State.PENDING_PAYMENT, choices=State.choices, protected=True)
    shipping_address = models.ForeignKey(
        Address, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("shipping address")
    )
    shipping_fee = models.DecimalField(_("shipping fee"), default=ZERO, **MONEY)
    paid_total = models.DecimalField(_("paid total"), default=ZERO, **MONEY)
    # Sum of succeeded payouts; moved only by refunds.services under a row lock.
    refunded_total = models.DecimalField(_("refunded total"), default=ZERO, **MONEY)
    # What open refund requests hold: counts as taken so two requests can't both claim it.
    held_total = models.DecimalField(_("held by open requests"), default=ZERO, **MONEY)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    shipped_at = models.DateTimeField(_("shipped at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        constraints = [
            models.UniqueConstraint(fields=["channel", "number"], name="order_number_unique_per_channel"),
            models.CheckConstraint(
                condition=Q(refunded_total__gte=0) & Q(held_total__gte=0) & Q(paid_total__gte=0),
                name="order_money_not_negative",
            ),
            models.CheckConstraint(
                # Rounded to the cent: SQLite keeps decimals as binary floats, where
                # 29.99 - 9.99 is not 20.00. On PostgreSQL (numeric) the round is a no-op.
                condition=Q(refunded_total__lte=Round(F("paid_total") - F("held_total"), 2)),
                name="order_refunded_plus_held_le_paid",
            ),
        ]
        indexes = [models.Index(fields=["customer", "placed_at"]), models.Index(fields=["number"])]

    def __str__(self) -> str:
        return self.number

    @property
    def refund_status(self) -> str:
        if self.refunded_total <= 0:
            return self.RefundStatus.NONE
        if self.refunded_total >= self.paid_total:
            return self.RefundStatus.FULL
        return self.RefundStatus.PARTIAL

    @property
    def refundable_total(self) -> Decimal:
        return self.paid_total - self.refunded_total - self.held_total

    @transition(field=state, source=State.PENDING_PAYMENT, target=State.PAID)
    def pay(self, *, at):
        self.paid_at = at

    @transition(field=state, source=State.PAID, target=State.SHIPPED)
    def ship(self, *, at):
        self.shipped_at = at

    @transition(field=state, source=State.SHIPPED, target=State.DELIVERED)
    def deliver(self, *, at):
        self.delivered_at = at

    @transition(field=state, source=State.DELIVERED, target=State.COMPLETED)
    def complete(self, *, at):
        self.completed_at = at

    @transition(field=state, source=[State.PENDING_PAYMENT, State.PAID], target=State.CANCELLED)
    def cancel(self, *, at):
        self.cancelled_at = at


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines", verbose_name=_("order"))
    sku = models.CharField(_("SKU"), max_length=64)
    name = models.CharField(_("name"), max_length=200, blank=True)
    quantity = models.PositiveIntegerField(_("quantity"))
    unit_price = models.DecimalField(_("unit price"), **MONEY)
    line_total = models.DecimalField(_("line total"), **MONEY)
    refunded_quantity = models.PositiveIntegerField(_("refunded quantity"), default=0)
    refunded_amount = models.DecimalField(_("refunded amount"), default=ZERO, **MONEY)
    held_quantity = models.PositiveIntegerField(_("held quantity"), default=0)
    held_amount = models.DecimalField(_("held amount"), default=ZERO, **MONEY)

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        constraints = [
            models.UniqueConstraint(fields=["order", "sku"], name="order_line_sku_unique"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_line_quantity_positive"),
            models.CheckConstraint(
                condition=Q(refunded_quantity__lte=F("quantity") - F("held_quantity")),
                name="order_line_refunded_plus_held_qty_le_quantity",
            ),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(held_amount__gte=0),
                name="order_line_money_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(refunded_amount__lte=Round(F("line_total") - F("held_amount"), 2)),
                name="order_line_refunded_plus_held_le_total",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}:{self.sku}"

    @staticmethod
    def total_of(*, unit_price: Decimal, quantity: int) -> Decimal:
        """What `quantity` at `unit_price` comes to, to the cent: the line's `line_total`."""
        return (unit_price * quantity).quantize(Decimal("0.01"))

    @property
    def refundable_quantity(self) -> int:
        return self.quantity - self.refunded_quantity - self.held_quantity


class OrderEvent(models.Model):
    """The order's state history (append-only)."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events", verbose_name=_("order"))
    from_state = models.CharField(_("from state"), max_length=20, blank=True)
    to_state = models.CharField(_("to state"), max_length=20)
    actor = models.CharField(_("actor"), max_length=100)
    note = models.TextField(_("note"), blank=True)
    at = models.DateTimeField(_("at"), default=timezone.now)

    class Meta:
        verbose_name = _("order event")
        verbose_name_plural = _("order events")

    def __str__(self) -> str:
        return f"{self.order_id}: {self.from_state} → {self.to_state}"


class AddressChange(models.Model):
    """Every change of an order's shipping address (a risk signal)."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="address_changes", verbose_name=_("order"))
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="address_changes", verbose_name=_("customer"))
    old_address = models.ForeignKey(Address, on_delete=models.PROTECT, null=True, related_name="+", verbose_name=_("old address"))
    new_address = models.ForeignKey(Address, on_delete=models.PROTECT, related_name="+", verbose_name=_("new address"))
    changed_at = models.DateTimeField(_("changed at"), default=timezone.now)

    class Meta:
        verbose_name = _("address change")
        verbose_name_plural = _("address changes")
        indexes = [models.Index(fields=["customer", "changed_at"])]

    def __str__(self) -> str:
        return f"{self.order_id} @ {self.changed_at:%Y-%m-%d}"


class Payment(models.Model):
    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="payment", verbose_name=_("order"))
    method = models.CharField(_("method"), max_length=30)
    reference = models.CharField(_("reference"), max_length=100)
    amount = models.DecimalField(_("amount"), **MONEY)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        constraints = [models.CheckConstraint(condition=Q(amount__gte=0), name="payment_amount_not_negative")]

    def __str__(self) -> str:
        return f"{self.method}:{self.reference}"


class TrackingStatus(models.TextChoices):
    PICKED_UP = "picked_up", _("Picked up")
    IN_TRANSIT = "in_transit", _("In transit")
    OUT_FOR_DELIVERY = "out_for_delivery", _("Out for delivery")
    DELIVERED = "delivered", _("Delivered")
    EXCEPTION = "exception", _("Exception")


class Shipment(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="shipments", verbose_name=_("order"))
    # The order's channel, copied so that a tracking number is unique per channel: one channel
    # can neither see nor claim another's (a unique constraint cannot reach through the order).
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="+", verbose_name=_("channel"))
    carrier = models.CharField(_("carrier"), max_length=30)
    tracking_number = models.CharField(_("tracking number"), max_length=64)
    shipped_at = models.DateTimeField(_("shipped at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    last_status = models.CharField(_("last status"), max_length=20, choices=TrackingStatus.choices, blank=True)
    expedited_at = models.DateTimeField(_("expedited at"), null=True, blank=True)

    class Meta:
        verbose_name = _("shipment")
        verbose_name_plural = _("shipments")
        constraints = [
            models.UniqueConstraint(fields=["channel", "carrier", "tracking_number"], name="shipment_tracking_unique_per_channel")
        ]
        indexes = [
            models.Index(fields=["carrier", "tracking_number"]),
            # The staff search looks a tracking number up without its carrier.
            models.Index(fields=["tracking_number"], name="shipment_tracking_number_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.carrier}:{self.tracking_number}"

    def save(self, *args, **kwargs):
        if self.channel_id is None and self.order_id is not None:
            self.channel_id = self.order.channel_id
        super().save(*args, **kwargs)


class TrackingEvent(models.Model):
    """A carrier's scan. Kept even when the tracking number is not known yet, and matched
    to a shipment or return parcel once it appears."""

    carrier = models.CharField(_("carrier"), max_length=30)
    tracking_number = models.CharField(_("tracking number"), max_length=64)
    status = models.CharField(_("status"), max_length=20, choices=TrackingStatus.choices)
    occurred_at = models.DateTimeField(_("occurred at"))
    location = models.CharField(_("location"), max_length=200, blank=True)
    shipment = models.ForeignKey(
        Shipment, on_delete=models.CASCADE, null=True, blank=True, related_name="tracking_events", verbose_name=_("shipment")
    )
    return_parcel = models.ForeignKey(
        "refunds.ReturnParcel",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="tracking_events",
        verbose_name=_("return parcel"),
    )
    received_at = models.DateTimeField(_("received at"), default=timezone.now)

    class Meta:
        verbose_name = _("tracking event")
        verbose_name_plural = _("tracking events")
        constraints = [
            # A replay of the same event is harmless: the unique key makes it a no-op.
            models.UniqueConstraint(fields=["carrier", "tracking_number", "status", "occurred_at"], name="tracking_event_unique")
        ]
        indexes = [models.Index(fields=["carrier", "tracking_number"])]

    def __str__(self) -> str:
        return f"{self.carrier}:{self.tracking_number} {self.status}"


class CustomerMessage(models.Model):
    class Direction(models.TextChoices):
        IN = "in", _("From customer")
        OUT = "out", _("To customer")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="messages", verbose_name=_("customer"))
    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, null=True, blank=True, related_name="messages", verbose_name=_("order")
    )
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="+", verbose_name=_("channel"))
    direction = models.CharField(_("direction"), max_length=3, choices=Direction.choices)
    body = models.TextField(_("message"))
    sent_at = models.DateTimeField(_("sent at"), default=timezone.now)

    class Meta:
        verbose_name = _("customer message")
        verbose_name_plural = _("customer messages")
        indexes = [models.Index(fields=["customer", "sent_at"])]

    def __str__(self) -> str:
        return f"{self.direction}: {self.body[:40]}"
