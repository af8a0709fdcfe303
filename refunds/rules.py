"""The merchant's refund policy as an ordered list of rules.

Each rule reads the request's facts and answers `pass`, `escalate`, `reject` or `offer`
(an alternative remedy) with a sentence a support agent can read. The decision is the
strictest outcome; the whole trace is stored with the request.
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from refunds.models import DEFAULT_DISPUTE_REASONS, Reason, RefundPolicy, RefundRequest, stored_label

PASS, OFFER, ESCALATE, REJECT = "pass", "offer", "escalate", "reject"
STRICTNESS = {PASS: 0, OFFER: 1, ESCALATE: 2, REJECT: 3}
MOVING = {"picked_up", "in_transit", "out_for_delivery"}


@dataclass
class Facts:
    """What the rules look at, gathered once per evaluation."""

    amount: Decimal
    reason: str
    kind: str
    order_state: str
    paid_total: Decimal
    refunded_total: Decimal
    delivered_at: datetime | None
    shipped_at: datetime | None
    carrier_shows_delivered: bool
    parcel_moving: bool
    other_refunds_on_order: int
    risk_score: int
    watchlisted: bool
    now: datetime


@dataclass
class Decision:
    outcome: str
    trace: list[dict] = field(default_factory=list)
    kind: str = RefundRequest.Kind.RETURN_AND_REFUND
    requires_second_review: bool = False
    alternative: dict | None = None

    def sentences(self, outcome: str) -> str:
        return "; ".join(step["sentence"] for step in self.trace if step["outcome"] == outcome)


def policy_for(channel) -> RefundPolicy:
    """The channel's own policy, else the default one (created on first use)."""
    policy = RefundPolicy.objects.filter(channel=channel).first() if channel else None
    if policy is None:
        policy = RefundPolicy.objects.filter(channel__isnull=True).first()
    if policy is None:
        policy, _ = RefundPolicy.objects.get_or_create(
            channel=None, defaults={"name": "Default policy", "dispute_reasons": list(DEFAULT_DISPUTE_REASONS)}
        )
    return policy


def gather_facts(
    refund: RefundRequest, *, risk_score: int, watchlisted: bool, now=None, other_refunds_on_order: int | None = None
) -> Facts:
    """`other_refunds_on_order` may be given by a caller that counted set-wise (the policy dry
    run, with `order__shipments` prefetched): then this makes no query."""
    order = refund.order
    shipments = list(order.shipments.all())
    delivered = [s.delivered_at for s in shipments if s.delivered_at]
    shipped = [s.shipped_at for s in shipments if s.shipped_at]
    other = other_refunds_on_order
    if other is None:
        other = (
            RefundRequest.objects.filter(order_id=order.pk)
            .exclude(pk=refund.pk)
            .exclude(state__in=[RefundRequest.State.WITHDRAWN, RefundRequest.State.REJECTED, RefundRequest.State.CANCELLED])
            .count()
        )
    return Facts(
        amount=refund.amount_requested,
        reason=refund.reason,
        kind=refund.requested_kind,
        order_state=order.state,
        paid_total=order.paid_total,
        refunded_total=order.refunded_total,
        delivered_at=max(delivered) if delivered else order.delivered_at,
        shipped_at=min(shipped) if shipped else order.shipped_at,
        carrier_shows_delivered=bool(delivered) or order.state in ("delivered", "completed"),
        parcel_moving=any(s.last_status in MOVING and not s.delivered_at for s in shipments)
        or (order.state == "shipped" and not delivered),
        other_refunds_on_order=other,
        risk_score=risk_score,
        watchlisted=watchlisted,
        now=now or timezone.now(),
    )


def evaluate(facts: Facts, policy: RefundPolicy) -> Decision:
    trace: list[dict] = []
    decision = Decision(outcome=PASS, kind=facts.kind)

    def step(rule: str, outcome: str, sentence: str) -> None:
        trace.append({"rule": rule, "outcome": outcome, "sentence": sentence})

    if policy.require_paid_enabled:
        if facts.order_state in ("pending_payment", "cancelled") or facts.paid_total <= 0:
            step("order_paid", REJECT, "the order has not been paid")
        elif facts.refunded_total >= facts.paid_total:
            step("order_paid", REJECT, "the order has already been fully refunded")
        else:
            step("order_paid", PASS, f"the order is paid ({facts.paid_total}) and not fully refunded")

    if policy.return_window_enabled:
        since, what = (facts.delivered_at, "delivered") if facts.delivered_at else (facts.shipped_at, "shipped")
        if since is None:
            step("return_window", PASS, "not shipped yet")
        else:
            days = (facts.now - since).days
            limit = policy.return_window_days
            if days > limit:
                step("return_window", REJECT, f"{what} {days} days ago; window is {limit}")
            else:
                step("return_window", PASS, f"{what} {days} days ago; window is {limit}")

    if policy.dispute_reasons_enabled:
        disputes = policy.dispute_reasons or list(DEFAULT_DISPUTE_REASONS)
        if facts.reason in disputes:
            step("dispute_reason", ESCALATE, f"'{stored_label(Reason(facts.reason).label)}' is a dispute reason")
        else:
            step("dispute_reason", PASS, f"'{stored_label(Reason(facts.reason).label)}' is not a dispute reason")

    if policy.auto_approve_limit_enabled:
        if facts.amount > policy.auto_approve_limit:
            step("auto_approve_limit", ESCALATE, f"{facts.amount} is above the auto-approve limit {policy.auto_approve_limit}")
        else:
            step("auto_approve_limit", PASS, f"{facts.amount} is within the auto-approve limit {policy.auto_approve_limit}")

    if policy.keep_it_enabled and facts.kind == RefundRequest.Kind.RETURN_AND_REFUND:
        if facts.amount < policy.keep_it_below:
            decision.kind = RefundRequest.Kind.REFUND_ONLY
            step("keep_it", PASS, f"{facts.amount} is below {policy.keep_it_below}: no return needed")

    if policy.not_received_check_enabled and facts.reason == Reason.NOT_RECEIVED:
        if facts.carrier_shows_delivered:
            step("not_received_but_delivered", ESCALATE, "claimed not received, but the carrier shows it delivered")
        else:
            step("not_received_but_delivered", PASS, "the carrier does not show a delivery")

    if policy.shipping_delay_alternative_enabled and facts.reason == Reason.SHIPPING_DELAY:
        if facts.parcel_moving:
            step("shipping_delay_expedite", OFFER, "the parcel is still moving: offer to expedite it instead")
            decision.alternative = {
                "kind": "expedite",
                "description": "We will expedite your parcel at our cost instead of refunding it.",
            }
        else:
            step("shipping_delay_expedite", PASS, "the parcel is not moving")

    if policy.risk_threshold_enabled:
        if facts.risk_score > policy.risk_threshold:
            step("risk_score", ESCALATE, f"risk score {facts.risk_score} is above the threshold {policy.risk_threshold}")
        else:
            step("risk_score", PASS, f"risk score {facts.risk_score} is within the threshold {policy.risk_threshold}")

    if policy.watchlist_enabled:
        if facts.watchlisted:
            step("watchlist", ESCALATE, "the customer is on the watch list: two reviewers needed")
            decision.requires_second_review = True
        else:
            step("watchlist", PASS, "the customer is not on the watch list")

    if policy.max_refunds_per_order_enabled:
        n, limit = facts.other_refunds_on_order, policy.max_refunds_per_order
        if n >= limit:
            step("refunds_per_order", ESCALATE, f"{n} other refund requests on this order already; limit is {limit}")
        else:
            step("refunds_per_order", PASS, f"{n} other refund requests on this order; limit is {limit}")

    decision.trace = trace
    decision.outcome = max((s["outcome"] for s in trace), key=STRICTNESS.__getitem__, default=PASS)
    if decision.outcome != OFFER:
        decision.alternative = None
    return decision


def decide(facts: Facts, policy: RefundPolicy) -> Decision:
    """The policy's decision, and then the one rule no policy can switch off: a customer on
    the watch list is never approved automatically. Evaluation and the dry run both use it."""
    decision = evaluate(facts, policy)
    if facts.watchlisted and decision.outcome in (PASS, OFFER):
        decision.outcome = ESCALATE
        decision.alternative = None
        decision.trace.append({"rule": "watchlist", "outcome": ESCALATE, "sentence": "the customer is on the watch list"})
    return decision
