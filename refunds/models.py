"""Refund requests, their payouts and their event log.

Transition methods only set the model's own fields; every state change is driven by a
service in `refunds/services/`, which locks, checks the actor, saves and records the event.
Every transition any path performs is declared here with `@transition`: a row moves by
calling one, a set of rows by `move_set` with one, and a bare `update(state=…)` is refused.
`docs/lifecycle.md` holds the spec's table these declarations are tested against.
"""

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _
from django_fsm import ANY_OTHER_STATE, ANY_STATE, FSMField, FSMFieldMixin, FSMModelMixin, transition

from orders.models import MONEY, ZERO, Channel, Customer, Order, OrderLine


def staff_reference(verbose_name) -> models.ForeignKey:
    """The staff user who did something, if a person did: kept while the row exists, and
    indexed only where set (a partial index in the model's Meta)."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=verbose_name,
        db_index=False,
    )


def stored_label(label) -> str:
    """A choice's label as written into a stored sentence (a rule trace, an escalation
    reason): English, whatever language the screen that caused it is in, as every sentence
    stored with a decision is."""
    with translation.override("en"):
        return str(label)


# --- the machines' transitions, for one row and for a set of rows ---------------------------

# `@transition(..., custom=SET_BASED)`: the transition may also run over a set of rows
# (`move_set`). Its body must only assign fields — from its arguments, or by arithmetic on
# the row's own fields, which becomes SQL — and never decide in Python on a field's value,
# and it may have no conditions: over a set, both would be skipped.
SET_BASED = {"set_based": True}


def sources_of(transition) -> tuple[str, ...]:
    """The states `transition` (a machine's @transition method, e.g. `Payout.start`) is
    declared to start from: what a path that picks rows by state in SQL reads."""
    declared = _declared(transition)
    if ANY_STATE in declared or ANY_OTHER_STATE in declared:
        raise ValueError(f"{transition.__qualname__} starts from any state; name its sources.")
    return tuple(declared)


def target_of(transition) -> str:
    """The state `transition` is declared to end in."""
    targets = {t.target for t in _declared(transition).values()}
    if len(targets) != 1 or None in targets:
        raise ValueError(f"{transition.__qualname__} has no single target state: {sorted(map(str, targets))}.")
    return targets.pop()


def _declared(transition) -> dict:
    return _meta(transition).transitions


def _meta(transition):
    meta = getattr(transition, "_django_fsm", None)
    if meta is None:
        raise TypeError(f"{transition!r} is not a django-fsm transition.")
    return meta


def _state_fields(model) -> set[str]:
    return {f.attname for f in model._meta.concrete_fields if isinstance(f, FSMFieldMixin)}


class MachineQuerySet(models.QuerySet):
    """A machine's rows change state only through a declared transition: a bare
    `update(state=…)` (or a `bulk_update` of the state) is refused, so the model's
    declarations are the whole of what any path can do."""

    def update(self, **kwargs):
        written = _state_fields(self.model) & kwargs.keys()
        if written:
            raise TypeError(
                f"{self.model.__name__}.{', '.join(sorted(written))} changes only through a declared transition: "
                "call it on the row, or move_set(queryset, transition) for a set of rows."
            )
        return super().update(**kwargs)


def move_set(queryset: models.QuerySet, transition, *, also: dict | None = None, **kwargs) -> int:
    """Run `transition` over every row of `queryset` in one conditional UPDATE … WHERE state
    IN (its declared sources): rows in any other state are left as they are. Returns how
    many rows moved.

    The columns set are the transition's own: its body is run once on a stand-in row whose
    fields are column references, with `kwargs` (so `self.approved_at = at` sets the column
    and `self.attempts += 1` becomes `attempts = attempts + 1`); then the model's `auto_now`
    fields, as `save()` would; then `also` (columns the transition does not set, e.g. a batch).
    """
    model = queryset.model
    declared = _declared(transition)
    field = _meta(transition).field
    if not isinstance(field, FSMFieldMixin) or not issubclass(model, field.model):
        raise TypeError(f"{transition.__qualname__} is not a transition of {model.__name__}.")
    if not all(t.custom.get("set_based") for t in declared.values()):
        raise ValueError(f"{transition.__qualname__} is not declared custom=SET_BASED; move each row on its own.")
    if any(t.conditions for t in declared.values()):
        raise ValueError(f"{transition.__qualname__} has conditions, which a set-based UPDATE would skip.")
    values = {field.attname: target_of(transition), **_columns_set_by(transition, model, kwargs)}
    now = timezone.now()
    for f in model._meta.concrete_fields:
        if getattr(f, "auto_now", False):
            values.setdefault(f.attname, now)
    clash = values.keys() & (also or {}).keys()
    if clash:
        raise ValueError(f"{transition.__qualname__} sets {', '.join(sorted(clash))} itself.")
    rows = queryset.filter(**{f"{field.name}__in": sources_of(transition)})
    return models.QuerySet.update(rows, **values, **(also or {}))


def _columns_set_by(transition, model, kwargs: dict) -> dict:
    row = model()
    refs = {}
    for f in model._meta.concrete_fields:
        if not isinstance(f, FSMFieldMixin):
            row.__dict__[f.attname] = refs[f.attname] = F(f.attname)
    # The body alone, without django-fsm's state change and signals: the UPDATE moves the state.
    transition.__wrapped__(row, **kwargs)
    return {name: row.__dict__[name] for name, ref in refs.items() if row.__dict__[name] is not ref}


class Reason(models.TextChoices):
    NOT_RECEIVED = "not_received", _("Not received")
    SHIPPING_DELAY = "shipping_delay", _("Shipping delay")
    DAMAGED = "damaged", _("Damaged")
    WRONG_ITEM = "wrong_item", _("Wrong item")
    NOT_AS_DESCRIBED = "not_as_described", _("Not as described")
    USED_GOODS = "used_goods", _("Used goods")
    SIZE_FIT = "size_fit", _("Size or fit")
    CHANGED_MIND = "changed_mind", _("Changed mind")
    QUALITY_ISSUE = "quality_issue", _("Quality issue")
    OTHER = "other", _("Other")


DEFAULT_DISPUTE_REASONS = [Reason.NOT_AS_DESCRIBED, Reason.USED_GOODS, Reason.QUALITY_ISSUE]


class RefundMethod(models.TextChoices):
    ORIGINAL_PAYMENT = "original_payment", _("Original payment")
    STORE_CREDIT = "store_credit", _("Store credit")
    COUPON = "coupon", _("Coupon")


class RefundRequest(FSMModelMixin, models.Model):
    class State(models.TextChoices):
        SUBMITTED = "submitted", _("Submitted")
        APPROVED = "approved", _("Approved")
        AWAITING_RETURN = "awaiting_return", _("Awaiting return")
        RETURN_IN_TRANSIT = "return_in_transit", _("Return in transit")
        RECEIVED = "received", _("Received")
        READY_FOR_PAYOUT = "ready_for_payout", _("Ready for payout")
        REFUNDED = "refunded", _("Refunded")
        UNDER_REVIEW = "under_review", _("Under review")
        AWAITING_CUSTOMER = "awaiting_customer", _("Awaiting customer")
        RESOLVED = "resolved", _("Resolved")
        REJECTED = "rejected", _("Rejected")
        WITHDRAWN = "withdrawn", _("Withdrawn")
        CANCELLED = "cancelled", _("Cancelled")

    TERMINAL = [State.REFUNDED, State.REJECTED, State.WITHDRAWN, State.CANCELLED, State.RESOLVED]
    WITHDRAWABLE = [
        State.SUBMITTED,
        State.UNDER_REVIEW,
        State.AWAITING_CUSTOMER,
        State.APPROVED,
        State.AWAITING_RETURN,
    ]

    class Kind(models.TextChoices):
        REFUND_ONLY = "refund_only", _("Refund only")
        RETURN_AND_REFUND = "return_and_refund", _("Return and refund")

    class Verdict(models.TextChoices):
        LEGITIMATE = "legitimate", _("Legitimate")
        ABUSIVE = "abusive", _("Abusive")

    # No index of their own for channel, order and customer: the indexes below that lead with
    # them serve every look-up, and each index is one more write on every request's intake.
    channel = models.ForeignKey(
        Channel, on_delete=models.PROTECT, related_name="refund_requests", verbose_name=_("channel"), db_index=False
    )
    idempotency_key = models.CharField(_("idempotency key"), max_length=128)
    # SHA-256 of the canonical request body: the same key with another body is a conflict.
    body_fingerprint = models.CharField(_("body fingerprint"), max_length=64, blank=True)
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="refund_requests", verbose_name=_("order"), db_index=False
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="refund_requests", verbose_name=_("customer"), db_index=False
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    requested_kind = models.CharField(_("requested kind"), max_length=20, choices=Kind.choices)
    reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices)
    refund_method = models.CharField(
        _("refund method"), max_length=20, choices=RefundMethod.choices, default=RefundMethod.ORIGINAL_PAYMENT
    )
    customer_note = models.TextField(_("customer note"), blank=True)
    state = FSMField(_("state"), default=State.SUBMITTED, choices=State.choices, protected=True)
    currency = models.CharField(_("currency"), max_length=3)
    amount_requested = models.DecimalField(_("amount requested"), **MONEY)
    amount_approved = models.DecimalField(_("amount approved"), null=True, blank=True, **MONEY)
    amount_paid = models.DecimalField(_("amount paid"), default=ZERO, **MONEY)

    # Captured at intake and never rewritten: what support saw when the request arrived.
    evidence = models.JSONField(_("evidence report"), default=dict, blank=True)
    rule_trace = models.JSONField(_("rule trace"), default=list, blank=True)
    risk_score = models.PositiveSmallIntegerField(_("risk score"), null=True, blank=True)
    risk_level = models.CharField(_("risk level"), max_length=10, blank=True)
    risk_signals = models.JSONField(_("risk signals"), default=list, blank=True)

    # The decision as the customer and support see it.
    decided_by = models.CharField(_("decided by"), max_length=100, blank=True)
    decision_reason = models.TextField(_("decision reason"), blank=True)
    escalation_reason = models.TextField(_("escalation reason"), blank=True)
    alternative = models.JSONField(_("alternative offered"), null=True, blank=True)
    requires_second_review = models.BooleanField(_("needs a second reviewer"), default=False)
    first_approved_by = staff_reference(_("first approved by"))
    first_approved_at = models.DateTimeField(_("first approved at"), null=True, blank=True)
    approved_by = staff_reference(_("approved by"))
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True)
    rejected_at = models.DateTimeField(_("rejected at"), null=True, blank=True)
    evaluated_at = models.DateTimeField(_("evaluated at"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    refunded_at = models.DateTimeField(_("refunded at"), null=True, blank=True)
    # Set when the hold on the order's lines is released (request ended without money).
    holds_released_at = models.DateTimeField(_("holds released at"), null=True, blank=True)

    verdict = models.CharField(_("verdict"), max_length=12, choices=Verdict.choices, blank=True)
    verdict_by = staff_reference(_("verdict by"))
    verdict_at = models.DateTimeField(_("verdict at"), null=True, blank=True)

    state_changed_at = models.DateTimeField(_("state changed at"), default=timezone.now)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = MachineQuerySet.as_manager()

    class Meta:
        verbose_name = _("refund request")
        verbose_name_plural = _("refund requests")
        constraints = [
            models.UniqueConstraint(fields=["channel", "idempotency_key"], name="refund_idempotency_unique"),
            models.CheckConstraint(condition=Q(amount_requested__gt=0), name="refund_amount_requested_positive"),
            models.CheckConstraint(
                condition=Q(amount_approved__isnull=True) | Q(amount_approved__lte=models.F("amount_requested")),
                name="refund_approved_le_requested",
            ),
            models.CheckConstraint(condition=Q(amount_paid__gte=0), name="refund_amount_paid_not_negative"),
        ]
        indexes = [
            models.Index(fields=["state", "state_changed_at"]),
            models.Index(fields=["state", "created_at"]),
            models.Index(fields=["customer", "created_at"]),
            models.Index(fields=["order", "state"]),
            # The support queue's filters (channel, reason) within a state, oldest first.
            models.Index(fields=["state", "channel", "created_at"], name="refund_queue_channel_idx"),
            models.Index(fields=["state", "reason", "created_at"], name="refund_queue_reason_idx"),
            models.Index(fields=["created_at"], name="refund_created_idx"),
            # The support queue, oldest first, straight from the index: no sort of every waiting row.
            models.Index(
                fields=["created_at", "id"],
                condition=Q(state__in=["under_review", "awaiting_customer"]),
                name="refund_support_queue_idx",
            ),
            # Deleting a user looks these up (PROTECT); most rows have no such user, so only
            # the rows that do are indexed.
            *(
                models.Index(fields=[name], condition=Q(**{f"{name}__isnull": False}), name=f"refund_{name}_idx")
                for name in ("first_approved_by", "approved_by", "verdict_by")
            ),
        ]
        permissions = [
            ("review_refundrequest", _("Can approve, reject and ask about refund requests")),
            ("create_for_customer", _("Can create a refund request for a customer")),
            ("receive_return", _("Can receive and inspect returned parcels")),
            ("record_verdict", _("Can record a verdict on an escalated request")),
            ("view_evidence", _("Can read the evidence report")),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def number(self) -> str:
        return f"RF-{self.pk:06d}" if self.pk else "RF-new"

    @property
    def is_terminal(self) -> bool:
        return self.state in self.TERMINAL

    # --- transitions: own fields only ---------------------------------------------------

    def _touch(self, at):
        self.state_changed_at = at

    @transition(field=state, source=State.SUBMITTED, target=State.APPROVED)
    def approve_automatically(self, *, at):
        self._touch(at)
        self.evaluated_at = at
        self.approved_at = at
        self.amount_approved = self.amount_requested
        self.decided_by = "system"

    @transition(field=state, source=State.SUBMITTED, target=State.UNDER_REVIEW)
    def escalate(self, *, at, reason: str):
        self._touch(at)
        self.evaluated_at = at
        self.escalation_reason = reason

    @transition(field=state, source=State.SUBMITTED, target=State.REJECTED)
    def reject_automatically(self, *, at, reason: str):
        self._touch(at)
        self.evaluated_at = at
        self.rejected_at = at
        self.decided_by = "system"
        self.decision_reason = reason

    @transition(field=state, source=[State.SUBMITTED, State.UNDER_REVIEW], target=State.AWAITING_CUSTOMER)
    def offer_alternative(self, *, at, alternative: dict):
        self._touch(at)
        if self.evaluated_at is None:
            self.evaluated_at = at
        self.alternative = alternative

    @transition(field=state, source=State.AWAITING_CUSTOMER, target=State.RESOLVED, conditions=[lambda r: bool(r.alternative)])
    def accept_alternative(self, *, at):
        self._touch(at)
        self.resolved_at = at
        self.alternative = {**self.alternative, "accepted_at": at.isoformat()}

    @transition(
        field=state, source=State.AWAITING_CUSTOMER, target=State.UNDER_REVIEW, conditions=[lambda r: bool(r.alternative)]
    )
    def decline_alternative(self, *, at):
        self._touch(at)
        self.alternative = {**self.alternative, "declined_at": at.isoformat()}

    @transition(field=state, source=State.UNDER_REVIEW, target=State.APPROVED)
    def approve(self, *, at, by, reason: str = ""):
        self._touch(at)
        self.approved_at = at
        self.approved_by = by
        self.amount_approved = self.amount_requested
        self.decided_by = by.get_username()
        self.decision_reason = reason

    def record_first_approval(self, *, at, by):
        """The first of two reviewers; the state does not move until the second one."""
        self.first_approved_by = by
        self.first_approved_at = at

    @transition(field=state, source=State.UNDER_REVIEW, target=State.REJECTED)
    def reject(self, *, at, by, reason: str):
        self._touch(at)
        self.rejected_at = at
        self.decided_by = by.get_username()
        self.decision_reason = reason

    @transition(field=state, source=State.UNDER_REVIEW, target=State.AWAITING_CUSTOMER)
    def ask_customer(self, *, at):
        self._touch(at)
        self.alternative = None

    @transition(field=state, source=State.AWAITING_CUSTOMER, target=State.UNDER_REVIEW, conditions=[lambda r: not r.alternative])
    def resume(self, *, at):
        self._touch(at)

    @transition(field=state, source=State.APPROVED, target=State.AWAITING_RETURN)
    def await_return(self, *, at):
        self._touch(at)

    @transition(field=state, source=State.APPROVED, target=State.READY_FOR_PAYOUT)
    def ready_without_return(self, *, at):
        self._touch(at)

    @transition(field=state, source=State.AWAITING_RETURN, target=State.RETURN_IN_TRANSIT)
    def return_shipped(self, *, at):
        self._touch(at)

    @transition(field=state, source=[State.AWAITING_RETURN, State.RETURN_IN_TRANSIT], target=State.RECEIVED)
    def receive(self, *, at):
        self._touch(at)

    @transition(field=state, source=State.AWAITING_RETURN, target=State.CANCELLED)
    def expire(self, *, at):
        self._touch(at)
        self.cancelled_at = at

    @transition(field=state, source=State.RECEIVED, target=State.READY_FOR_PAYOUT)
    def inspection_passed(self, *, at):
        self._touch(at)

    @transition(field=state, source=State.RECEIVED, target=State.UNDER_REVIEW)
    def inspection_failed(self, *, at, reason: str):
        self._touch(at)
        self.escalation_reason = reason

    @transition(field=state, source=State.READY_FOR_PAYOUT, target=State.REFUNDED)
    def complete(self, *, at):
        self._touch(at)
        self.refunded_at = at

    @transition(field=state, source=WITHDRAWABLE, target=State.WITHDRAWN)
    def withdraw(self, *, at):
        self._touch(at)
        self.withdrawn_at = at


class RefundLine(models.Model):
    # Indexed by refund_line_unique, which leads with it.
    request = models.ForeignKey(
        RefundRequest, on_delete=models.CASCADE, related_name="lines", verbose_name=_("request"), db_index=False
    )
    order_line = models.ForeignKey(OrderLine, on_delete=models.PROTECT, related_name="refund_lines", verbose_name=_("order line"))
    quantity = models.PositiveIntegerField(_("quantity"))
    amount = models.DecimalField(_("amount"), **MONEY)

    class Meta:
        verbose_name = _("refund line")
        verbose_name_plural = _("refund lines")
        constraints = [
            models.UniqueConstraint(fields=["request", "order_line"], name="refund_line_unique"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="refund_line_quantity_positive"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="refund_line_amount_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.request_id}:{self.order_line_id}×{self.quantity}"


class ReturnParcel(models.Model):
    request = models.OneToOneField(
        RefundRequest, on_delete=models.CASCADE, related_name="return_parcel", verbose_name=_("request")
    )
    return_code = models.CharField(_("return code"), max_length=20, unique=True)
    address = models.TextField(_("return address"))
    deadline = models.DateTimeField(_("return deadline"))
    carrier = models.CharField(_("carrier"), max_length=30, blank=True)
    tracking_number = models.CharField(_("tracking number"), max_length=64, blank=True)
    shipped_at = models.DateTimeField(_("shipped at"), null=True, blank=True)
    received_at = models.DateTimeField(_("received at"), null=True, blank=True)
    received_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("received by")
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("return parcel")
        verbose_name_plural = _("return parcels")
        constraints = [
            models.UniqueConstraint(
                fields=["carrier", "tracking_number"],
                condition=~Q(tracking_number=""),
                name="return_parcel_tracking_unique",
            )
        ]
        indexes = [
            models.Index(fields=["tracking_number"]),
            # The warehouse queue: parcels not received yet, oldest first.
            models.Index(fields=["created_at", "id"], condition=Q(received_at__isnull=True), name="parcel_expected_idx"),
        ]

    def __str__(self) -> str:
        return self.return_code


class Inspection(models.Model):
    class Grade(models.TextChoices):
        UNOPENED = "unopened", _("Unopened")
        OPENED = "opened", _("Opened")
        USED = "used", _("Used")
        DAMAGED = "damaged", _("Damaged")
        WRONG_ITEM = "wrong_item", _("Wrong item")

    PASSING_GRADES = [Grade.UNOPENED, Grade.OPENED]

    class Disposition(models.TextChoices):
        RESTOCK = "restock", _("Restock")
        REFURBISH = "refurbish", _("Refurbish")
        DISPOSE = "dispose", _("Dispose")

    request = models.OneToOneField(RefundRequest, on_delete=models.CASCADE, related_name="inspection", verbose_name=_("request"))
    grade = models.CharField(_("grade"), max_length=12, choices=Grade.choices)
    disposition = models.CharField(_("disposition"), max_length=12, choices=Disposition.choices)
    note = models.TextField(_("note"), blank=True)
    photo = models.FileField(_("photo"), upload_to="inspections/%Y/%m/", blank=True)
    passed = models.BooleanField(_("passed"))
    inspected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("inspected by")
    )
    inspected_at = models.DateTimeField(_("inspected at"), default=timezone.now)

    class Meta:
        verbose_name = _("inspection")
        verbose_name_plural = _("inspections")

    def __str__(self) -> str:
        return f"{self.request_id}: {self.grade}"


class PayoutBatch(models.Model):
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("created by")
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("payout batch")
        verbose_name_plural = _("payout batches")

    def __str__(self) -> str:
        return f"PB-{self.pk:05d}"


class Payout(FSMModelMixin, models.Model):
    class State(models.TextChoices):
        PENDING_APPROVAL = "pending_approval", _("Pending approval")
        APPROVED = "approved", _("Approved")
        PROCESSING = "processing", _("Processing")
        # The gateway was called and gave no answer that says whether it paid (a timeout, a
        # dropped connection): nobody may void, reissue or retry it under a new key until the
        # gateway, asked, has answered.
        OUTCOME_UNKNOWN = "outcome_unknown", _("Outcome unknown")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        VOIDED = "voided", _("Voided")

    request = models.ForeignKey(RefundRequest, on_delete=models.PROTECT, related_name="payouts", verbose_name=_("request"))
    method = models.CharField(_("method"), max_length=20, choices=RefundMethod.choices)
    amount = models.DecimalField(_("amount"), **MONEY)
    currency = models.CharField(_("currency"), max_length=3)
    state = FSMField(_("state"), default=State.PENDING_APPROVAL, choices=State.choices, protected=True)
    # Sent to the gateway on every call for this payout: a retry can never pay twice.
    idempotency_key = models.UUIDField(_("idempotency key"), default=uuid.uuid4, unique=True, editable=False)
    batch = models.ForeignKey(
        PayoutBatch, on_delete=models.SET_NULL, null=True, blank=True, related_name="payouts", verbose_name=_("batch")
    )
    first_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("first approved by"),
    )
    first_approved_at = models.DateTimeField(_("first approved at"), null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("approved by")
    )
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    processing_started_at = models.DateTimeField(_("processing started at"), null=True, blank=True)
    succeeded_at = models.DateTimeField(_("succeeded at"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed at"), null=True, blank=True)
    voided_at = models.DateTimeField(_("voided at"), null=True, blank=True)
    gateway_reference = models.CharField(_("gateway reference"), max_length=100, blank=True)
    error = models.TextField(_("gateway error"), blank=True)
    # The gateway said trying again cannot help (a closed card): pay by another method.
    failure_permanent = models.BooleanField(_("declined for good"), default=False)
    # While the outcome is unknown: since when, how often the gateway was asked, its last
    # answer, and when the sweeper asks next (a back-off).
    outcome_unknown_at = models.DateTimeField(_("outcome unknown since"), null=True, blank=True)
    status_checks = models.PositiveIntegerField(_("status queries"), default=0)
    status_checked_at = models.DateTimeField(_("last asked at"), null=True, blank=True)
    status_answer = models.TextField(_("gateway's last answer"), blank=True)
    next_status_check_at = models.DateTimeField(_("next query at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = MachineQuerySet.as_manager()

    class Meta:
        verbose_name = _("payout")
        verbose_name_plural = _("payouts")
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="payout_amount_positive")]
        indexes = [
            models.Index(fields=["state", "created_at"]),
            models.Index(fields=["state", "succeeded_at"]),
            # Finance's "all payouts" list is ordered oldest first across every state.
            models.Index(fields=["created_at", "id"], name="payout_created_idx"),
            # The sweeper's look-up of unknown outcomes due to be asked about.
            models.Index(fields=["next_status_check_at"], condition=Q(state="outcome_unknown"), name="payout_unknown_due_idx"),
        ]
        permissions = [
            ("approve_payout", _("Can approve payouts")),
            ("retry_payout", _("Can retry failed payouts")),
            ("export_payout", _("Can export payouts for reconciliation")),
            ("reconcile_payout", _("Can check payouts against the gateway's books and resolve differences")),
        ]

    def __str__(self) -> str:
        return f"PO-{self.pk:06d}" if self.pk else "PO-new"

    @transition(field=state, source=State.PENDING_APPROVAL, target=State.APPROVED, custom=SET_BASED)
    def approve(self, *, at, by):
        """Finance's approval (`payout_approve` one by one, `payout_approve_bulk` over a set)."""
        self.approved_at = at
        self.approved_by = by

    def record_first_approval(self, *, at, by):
        self.first_approved_by = by
        self.first_approved_at = at

    @transition(field=state, source=State.APPROVED, target=State.PROCESSING, custom=SET_BASED)
    def start(self, *, at):
        """Claimed for execution: `payout_claim` runs it as one conditional UPDATE, so exactly
        one of any number of concurrent claimers moves the row."""
        self.processing_started_at = at
        self.attempts += 1

    @transition(field=state, source=State.FAILED, target=State.PROCESSING, conditions=[lambda p: not p.failure_permanent])
    def retry(self, *, at):
        """Sent again under the same idempotency key."""
        self.processing_started_at = at
        self.attempts += 1
        self.error = ""

    @transition(field=state, source=[State.PROCESSING, State.OUTCOME_UNKNOWN], target=State.SUCCEEDED)
    def succeed(self, *, at, reference: str):
        self.succeeded_at = at
        self.gateway_reference = reference
        self.error = ""
        self.next_status_check_at = None

    @transition(field=state, source=[State.PROCESSING, State.OUTCOME_UNKNOWN], target=State.FAILED)
    def fail(self, *, at, error: str, permanent: bool = False):
        """The gateway said it did not pay (declined, or asked about an unknown outcome)."""
        self.failed_at = at
        self.error = error
        self.failure_permanent = permanent
        self.next_status_check_at = None

    @transition(field=state, source=State.PROCESSING, target=State.OUTCOME_UNKNOWN)
    def lose_track(self, *, at, error: str, check_at):
        """No answer that says whether the gateway paid: ask it (at `check_at`) before anything else."""
        self.outcome_unknown_at = at
        self.error = error
        self.status_checks = 0
        self.status_answer = ""
        self.next_status_check_at = check_at

    def record_status_answer(self, *, at, answer: str, check_at) -> None:
        """The gateway, asked, still did not say; the state does not move."""
        self.status_checks += 1
        self.status_checked_at = at
        self.status_answer = answer
        self.next_status_check_at = check_at

    @transition(field=state, source=[State.PENDING_APPROVAL, State.FAILED], target=State.VOIDED, custom=SET_BASED)
    def void(self, *, at):
        """Only a payout the gateway never paid: pending, or failed by the gateway's own answer."""
        self.voided_at = at


class RefundEvent(models.Model):
    """Append-only log: one row per state change (and per first approval), with its actor."""

    class ActorKind(models.TextChoices):
        USER = "user", _("Staff user")
        CHANNEL = "channel", _("Channel")
        SYSTEM = "system", _("System")

    # Indexed by (request, at) below; the nullable references only where they are set.
    request = models.ForeignKey(
        RefundRequest, on_delete=models.CASCADE, related_name="events", verbose_name=_("request"), db_index=False
    )
    payout = models.ForeignKey(
        Payout, on_delete=models.CASCADE, null=True, blank=True, related_name="events", verbose_name=_("payout"), db_index=False
    )
    action = models.CharField(_("action"), max_length=40)
    from_state = models.CharField(_("from state"), max_length=20, blank=True)
    to_state = models.CharField(_("to state"), max_length=20)
    actor_kind = models.CharField(_("actor kind"), max_length=10, choices=ActorKind.choices)
    actor_user = staff_reference(_("actor user"))
    actor_channel = models.ForeignKey(
        Channel,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor channel"),
        db_index=False,
    )
    note = models.TextField(_("note"), blank=True)
    # Shown to the customer in the API's timeline.
    public = models.BooleanField(_("public"), default=False)
    at = models.DateTimeField(_("at"), default=timezone.now)

    class Meta:
        verbose_name = _("refund event")
        verbose_name_plural = _("refund events")
        indexes = [
            models.Index(fields=["request", "at"]),
            *(
                models.Index(fields=[name], condition=Q(**{f"{name}__isnull": False}), name=f"refund_event_{name}_idx")
                for name in ("payout", "actor_user", "actor_channel")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.request_id}: {self.action}"

    @property
    def actor_label(self) -> str:
        if self.actor_kind == self.ActorKind.USER:
            return f"user:{self.actor_user_id}"
        if self.actor_kind == self.ActorKind.CHANNEL:
            return f"channel:{self.actor_channel_id}"
        return "system"


class WalletEntry(models.Model):
    """Store credit ledger: append-only; a balance is always a sum, never a stored number."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="wallet_entries", verbose_name=_("customer"))
    amount = models.DecimalField(_("amount"), **MONEY)
    currency = models.CharField(_("currency"), max_length=3)
    payout = models.OneToOneField(
        Payout, on_delete=models.PROTECT, null=True, blank=True, related_name="wallet_entry", verbose_name=_("payout")
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("wallet entry")
        verbose_name_plural = _("wallet entries")

    def __str__(self) -> str:
        return f"{self.customer_id} {self.amount}"


class Coupon(models.Model):
    code = models.CharField(_("code"), max_length=24, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="coupons", verbose_name=_("customer"))
    amount = models.DecimalField(_("amount"), **MONEY)
    currency = models.CharField(_("currency"), max_length=3)
    expires_at = models.DateTimeField(_("expires at"))
    payout = models.OneToOneField(Payout, on_delete=models.PROTECT, related_name="coupon", verbose_name=_("payout"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="coupon_amount_positive")]

    def __str__(self) -> str:
        return self.code


class RefundPolicy(models.Model):
    """The merchant's rules. One per channel; the row without a channel is the default."""

    channel = models.OneToOneField(
        Channel, on_delete=models.CASCADE, null=True, blank=True, related_name="policy", verbose_name=_("channel")
    )
    name = models.CharField(_("name"), max_length=100)

    require_paid_enabled = models.BooleanField(_("order must be paid and not fully refunded"), default=True)
    return_window_enabled = models.BooleanField(_("return window"), default=True)
    return_window_days = models.PositiveIntegerField(_("return window (days)"), default=30)
    dispute_reasons_enabled = models.BooleanField(_("dispute reasons go to a person"), default=True)
    dispute_reasons = models.JSONField(_("dispute reasons"), default=list, blank=True)
    auto_approve_limit_enabled = models.BooleanField(_("auto-approve only up to an amount"), default=True)
    auto_approve_limit = models.DecimalField(_("auto-approve limit"), default=Decimal("200.00"), **MONEY)
    keep_it_enabled = models.BooleanField(_("no return needed below an amount"), default=True)
    keep_it_below = models.DecimalField(_("keep-it amount"), default=Decimal("20.00"), **MONEY)
    not_received_check_enabled = models.BooleanField(_("'not received' while the carrier shows delivered"), default=True)
    shipping_delay_alternative_enabled = models.BooleanField(
        _("offer expedite for 'shipping delay' while the parcel moves"), default=True
    )
    risk_threshold_enabled = models.BooleanField(_("risk score above a threshold"), default=True)
    risk_threshold = models.PositiveSmallIntegerField(_("risk threshold"), default=70)
    watchlist_enabled = models.BooleanField(_("customer on the watch list"), default=True)
    max_refunds_per_order_enabled = models.BooleanField(_("too many refunds on this order"), default=True)
    max_refunds_per_order = models.PositiveSmallIntegerField(_("refunds per order before review"), default=2)

    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("refund policy")
        verbose_name_plural = _("refund policies")
        constraints = [
            models.UniqueConstraint(fields=["channel"], condition=Q(channel__isnull=True), name="one_default_policy"),
            models.UniqueConstraint(fields=["name"], condition=Q(channel__isnull=True), name="default_policy_name"),
        ]

    def __str__(self) -> str:
        return self.name


class PayoutSettings(models.Model):
    """Finance's money limits that an admin changes at run time; one row (pk=1).

    Empty means the deployment's `REFUND_DESK["PAYOUT_FOUR_EYES_ABOVE"]`. A raise waits for a
    second admin (`refunds.services.policy`); a lowering applies at once.
    """

    four_eyes_above = models.DecimalField(
        _("second approver above"),
        null=True,
        blank=True,
        help_text=_("Payouts above this amount need a second, different finance approver. Empty: the deployment's setting."),
        **MONEY,
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("payout settings")
        verbose_name_plural = _("payout settings")
        constraints = [models.CheckConstraint(condition=Q(four_eyes_above__gte=0), name="four_eyes_above_not_negative")]

    def __str__(self) -> str:
        return str(_("payout settings"))

    @classmethod
    def current(cls) -> "PayoutSettings":
        obj, _created = cls.objects.get_or_create(pk=1)
        return obj


class ReconciliationRun(models.Model):
    """One comparison of a day's refunds in the gateway's books with our succeeded payouts."""

    class State(models.TextChoices):
        RUNNING = "running", _("Running")
        CLEAN = "clean", _("No differences")
        DIFFERENCES = "differences", _("Differences found")
        FAILED = "failed", _("Could not ask the gateway")

    day = models.DateField(_("day"))
    state = models.CharField(_("state"), max_length=12, choices=State.choices, default=State.RUNNING)
    requested_by = staff_reference(_("requested by"))
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    gateway_count = models.PositiveIntegerField(_("refunds in the gateway's books"), default=0)
    our_count = models.PositiveIntegerField(_("payouts in our books"), default=0)
    # {currency: "total"} of each side, as decimal strings.
    gateway_totals = models.JSONField(_("gateway's totals"), default=dict, blank=True)
    our_totals = models.JSONField(_("our totals"), default=dict, blank=True)
    differences = models.PositiveIntegerField(_("differences"), default=0)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("reconciliation run")
        verbose_name_plural = _("reconciliation runs")
        indexes = [
            models.Index(fields=["day", "-started_at"], name="recon_run_day_idx"),
            models.Index(fields=["requested_by"], condition=Q(requested_by__isnull=False), name="recon_run_requested_by_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d} #{self.pk}"


class ReconciliationDifference(models.Model):
    """A disagreement between the gateway's books and ours. Never closed by the code: it stays
    open until a person says what was done about it."""

    class Kind(models.TextChoices):
        PAID_THERE_NOT_HERE = "paid_there_not_here", _("Paid by the gateway, not in our books")
        PAID_HERE_NOT_THERE = "paid_here_not_there", _("In our books, not paid by the gateway")
        PAID_TWICE = "paid_twice", _("The gateway refunded one payment more than our books say")
        AMOUNT_DIFFERS = "amount_differs", _("The amounts differ")

    kind = models.CharField(_("kind"), max_length=24, choices=Kind.choices)
    day = models.DateField(_("day"))
    # What makes it the same difference when a later run sees it again.
    fingerprint = models.CharField(_("fingerprint"), max_length=200, unique=True)
    payout = models.ForeignKey(
        Payout, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("payout"), db_index=False
    )
    payment_reference = models.CharField(_("payment reference"), max_length=100, blank=True)
    gateway_reference = models.CharField(_("gateway reference"), max_length=200, blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=64, blank=True)
    gateway_amount = models.DecimalField(_("gateway's amount"), null=True, blank=True, **MONEY)
    our_amount = models.DecimalField(_("our amount"), null=True, blank=True, **MONEY)
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    first_seen_at = models.DateTimeField(_("first seen at"), default=timezone.now)
    last_seen_at = models.DateTimeField(_("last seen at"), default=timezone.now)
    last_run = models.ForeignKey(
        ReconciliationRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("last run")
    )
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    resolved_by = staff_reference(_("resolved by"))
    resolution_note = models.TextField(_("what was done"), blank=True)

    class Meta:
        verbose_name = _("reconciliation difference")
        verbose_name_plural = _("reconciliation differences")
        indexes = [
            models.Index(fields=["day"], condition=Q(resolved_at__isnull=True), name="recon_diff_open_idx"),
            models.Index(fields=["payout"], condition=Q(payout__isnull=False), name="recon_diff_payout_idx"),
            models.Index(fields=["resolved_by"], condition=Q(resolved_by__isnull=False), name="recon_diff_resolved_by_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(resolved_at__isnull=True) | ~Q(resolution_note=""), name="recon_diff_resolved_with_a_note"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.day:%Y-%m-%d})"


def export_file_stem(what: str, filters: dict, day) -> str:
    """An export's file name without its extension: what, the filter, the day, e.g.
    `payouts-pending_approval-2026-12-02` or `refund-requests-refunded-channel-3-2026-12-02`."""
    parts = [what]
    for key in ("state", "method", "q", "created_from", "created_to"):
        if filters.get(key):
            parts.append(slugify(str(filters[key])) or key)
    if filters.get("channels"):
        parts.append("channel-" + "-".join(str(c) for c in filters["channels"]))
    parts.append(day.isoformat())
    return "-".join(parts)


class Export(models.Model):
    """A spreadsheet too big to write within a web request (`EXPORT_INLINE_MAX_ROWS`),
    written by a django-q2 task into a file only the staff user who asked for it downloads."""

    class What(models.TextChoices):
        PAYOUTS = "payouts", _("Payouts")
        REFUND_REQUESTS = "refund-requests", _("Refund requests")

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        XLSX = "xlsx", "XLSX"

    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Being written")
        DONE = "done", _("Ready")
        FAILED = "failed", _("Failed")

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("requested by")
    )
    what = models.CharField(_("what"), max_length=20, choices=What.choices)
    fmt = models.CharField(_("format"), max_length=4, choices=Format.choices)
    # The parsed filter (`refunds.selectors_exports`): what the rows are chosen by, then and later.
    filters = models.JSONField(_("filter"), default=dict, blank=True)
    rows = models.PositiveIntegerField(_("rows"), null=True, blank=True)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.QUEUED)
    file = models.FileField(_("file"), upload_to="exports/%Y/%m/", blank=True)
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("export")
        verbose_name_plural = _("exports")
        indexes = [models.Index(fields=["requested_by", "-created_at"], name="refunds_export_user_idx")]

    def __str__(self) -> str:
        return f"{self.get_what_display()} ({self.fmt.upper()}) #{self.pk}"

    @property
    def filename(self) -> str:
        return f"{export_file_stem(self.what, self.filters, timezone.localtime(self.created_at).date())}.{self.fmt}"
