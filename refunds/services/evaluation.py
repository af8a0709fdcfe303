import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.actors import SYSTEM, Actor
from notifications.services import notify_customer, notify_staff
from refunds import rules
from refunds.assessment import risk_assessor
from refunds.evidence import capture_evidence
from refunds.models import (
    Payout,
    RefundRequest,
    ReturnParcel,
)
from refunds.services.base import State, lock_refund, move, require
from refunds.services.holds import release_holds

logger = logging.getLogger(__name__)

# --- evaluation --------------------------------------------------------------------------


def refund_evaluate(*, refund_id: int, actor: Actor = SYSTEM) -> RefundRequest:
    """Decide a submitted request by the channel's policy. A no-op unless still `submitted`.

    First captures what intake leaves to this task (evidence, risk score, the customer's
    receipt), under the same locks, so every decision sees them.
    """
    require(actor, system_ok=True)
    with transaction.atomic():
        refund = lock_refund(refund_id, with_lines=True)
        if refund.state != State.SUBMITTED:
            return refund
        if not refund.evidence:
            capture_intake_facts(refund)
        watchlisted = risk_assessor().is_watchlisted(customer=refund.customer)
        facts = rules.gather_facts(refund, risk_score=refund.risk_score or 0, watchlisted=watchlisted)
        decision = rules.decide(facts, rules.policy_for(refund.channel))
        refund.rule_trace = decision.trace
        refund.kind = decision.kind
        refund.requires_second_review = decision.requires_second_review or watchlisted
        common = ["rule_trace", "kind", "requires_second_review", "evaluated_at"]
        if decision.outcome == rules.REJECT:
            reason = decision.sentences(rules.REJECT)
            move(
                refund,
                "reject_automatically",
                actor=actor,
                reason=reason,
                note=reason,
                fields=[*common, "rejected_at", "decided_by", "decision_reason"],
            )
            notify_customer(refund=refund, event="refund_rejected", context={"reason": reason})
            release_holds(refund)
        elif decision.outcome == rules.ESCALATE:
            reason = decision.sentences(rules.ESCALATE)
            move(refund, "escalate", actor=actor, reason=reason, note=reason, fields=[*common, "escalation_reason"])
            notify_customer(refund=refund, event="refund_under_review")
            notify_staff(role="support", event="refund_escalated", refund=refund, context={"reason": reason})
        elif decision.outcome == rules.OFFER:
            move(
                refund,
                "offer_alternative",
                actor=actor,
                alternative=decision.alternative,
                note=decision.sentences(rules.OFFER),
                fields=[*common, "alternative"],
            )
            notify_customer(refund=refund, event="alternative_offered", context=decision.alternative)
        else:
            move(
                refund,
                "approve_automatically",
                actor=actor,
                note="all rules passed",
                fields=[*common, "approved_at", "amount_approved", "decided_by"],
            )
            notify_customer(refund=refund, event="refund_approved")
            route_approved(refund, actor=actor)
    return refund


def capture_intake_facts(refund: RefundRequest) -> None:
    """The evidence snapshot and risk assessment of a just-submitted request, and its receipt.

    Moved out of the request's transaction to keep `POST /api/v1/refunds/` a thin write; it
    runs milliseconds later, before evaluation, and the sweeper of requests left in
    `submitted` re-drives it when the task is lost. `assess_customer` queues the profile
    recompute itself.
    """
    assessment = risk_assessor().assess_customer(customer=refund.customer, refund=refund)
    refund.risk_score, refund.risk_level, refund.risk_signals = assessment.score, assessment.level, assessment.signals
    refund.evidence = capture_evidence(refund)
    refund.save(update_fields=["risk_score", "risk_level", "risk_signals", "evidence"])
    notify_customer(refund=refund, event="request_received")


def route_approved(refund: RefundRequest, *, actor: Actor) -> None:
    """approved → awaiting_return (with a return code) or → ready_for_payout (with payouts)."""
    if refund.kind == RefundRequest.Kind.RETURN_AND_REFUND:
        # One return window, the one the merchant edits in the channel's policy: the customer
        # had that long after delivery to ask, and has as long again to send the parcel.
        window = rules.policy_for(refund.channel).return_window_days
        parcel = ReturnParcel.objects.create(
            request=refund,
            return_code=_new_return_code(),
            address=settings.REFUND_DESK["RETURN_ADDRESS"],
            deadline=timezone.now() + timedelta(days=window),
        )
        move(refund, "await_return", actor=SYSTEM, note=f"return code {parcel.return_code}")
        notify_customer(
            refund=refund,
            event="return_instructions",
            context={
                "return_code": parcel.return_code,
                "address": parcel.address,
                "deadline": parcel.deadline.date().isoformat(),
            },
        )
    else:
        move(refund, "ready_without_return", actor=SYSTEM)
        create_payouts(refund)


def _new_return_code() -> str:
    # Digits only: warehouse scanners type them as a keyboard and end with Enter.
    while True:
        code = "".join(secrets.choice("0123456789") for _ in range(12))
        if not ReturnParcel.objects.filter(return_code=code).exists():
            return code


def create_payouts(refund: RefundRequest) -> None:
    Payout.objects.create(request=refund, method=refund.refund_method, amount=refund.amount_approved, currency=refund.currency)
    notify_staff(role="finance", event="ready_for_payout", refund=refund, context={"amount": str(refund.amount_approved)})
