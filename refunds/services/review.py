import logging

from django.db import transaction
from django.utils import timezone
from django_fsm import can_proceed

from config.actors import Actor
from notifications.services import notify_customer, notify_staff
from orders.models import CustomerMessage, Shipment
from orders.signals import customer_changed
from refunds import permissions as perms
from refunds.errors import (
    ActionForbidden,
    RefundNotAllowed,
    RefundValidationError,
)
from refunds.models import (
    RefundRequest,
)
from refunds.services.base import State, lock_refund, move, peek, record_event, require
from refunds.services.evaluation import route_approved
from refunds.services.holds import release_holds

logger = logging.getLogger(__name__)

# --- support -----------------------------------------------------------------------------


def refund_approve(*, refund_id: int, actor: Actor, note: str = "") -> RefundRequest:
    """Approve a request under review. A watch-listed customer's needs two different people."""
    require(actor, perm=perms.REVIEW)
    with transaction.atomic():
        refund = lock_refund(refund_id)
        # Checked before the transition runs: a first of two approvals does not move it.
        if not can_proceed(refund.approve):
            raise RefundNotAllowed(
                f"{refund.number} is {refund.get_state_display().lower()}; only a request under review can be approved."
            )
        if refund.requires_second_review:
            if refund.first_approved_by_id is None:
                refund.record_first_approval(at=timezone.now(), by=actor.user)
                refund.save(update_fields=["first_approved_by", "first_approved_at", "updated_at"])
                record_event(refund, actor=actor, action="first_approval", from_state=refund.state, note=note, public=False)
                return refund
            if refund.first_approved_by_id == actor.user.pk:
                raise ActionForbidden("A second, different reviewer must approve this request.")
        move(
            refund,
            "approve",
            actor=actor,
            by=actor.user,
            reason=note,
            note=note,
            fields=["approved_at", "approved_by", "amount_approved", "decided_by", "decision_reason"],
        )
        notify_customer(refund=refund, event="refund_approved")
        route_approved(refund, actor=actor)
    return refund


def refund_reject(*, refund_id: int, actor: Actor, reason: str) -> RefundRequest:
    """Reject a request under review with a customer-facing reason; releases its hold."""
    require(actor, perm=perms.REVIEW)
    if not reason.strip():
        raise RefundValidationError({"reason": ["Give the customer a reason."]})
    with transaction.atomic():
        refund = lock_refund(refund_id, with_lines=True)
        move(
            refund,
            "reject",
            actor=actor,
            by=actor.user,
            reason=reason,
            note=reason,
            fields=["rejected_at", "decided_by", "decision_reason"],
        )
        notify_customer(refund=refund, event="refund_rejected", context={"reason": reason})
        release_holds(refund)
    return refund


def refund_ask_customer(*, refund_id: int, actor: Actor, question: str) -> RefundRequest:
    require(actor, perm=perms.REVIEW)
    if not question.strip():
        raise RefundValidationError({"question": ["Write the question for the customer."]})
    with transaction.atomic():
        refund = lock_refund(refund_id)
        move(refund, "ask_customer", actor=actor, note=question, fields=["alternative"])
        notify_customer(refund=refund, event="more_information_needed", context={"question": question})
    return refund


def refund_offer_alternative(*, refund_id: int, actor: Actor, alternative: dict) -> RefundRequest:
    require(actor, perm=perms.REVIEW)
    if not alternative.get("description"):
        raise RefundValidationError({"alternative": ["Describe the alternative for the customer."]})
    with transaction.atomic():
        refund = lock_refund(refund_id)
        # Narrower than the transition: from `submitted` only the evaluation offers one.
        if refund.state != State.UNDER_REVIEW:
            raise RefundNotAllowed(
                f"{refund.number} is {refund.get_state_display().lower()}; an alternative is offered only under review."
            )
        move(
            refund,
            "offer_alternative",
            actor=actor,
            alternative=alternative,
            note=alternative["description"],
            fields=["alternative"],
        )
        notify_customer(refund=refund, event="alternative_offered", context=alternative)
    return refund


def refund_accept_alternative(*, refund_id: int, actor: Actor) -> RefundRequest:
    """The customer takes the alternative: the request is resolved without money."""
    require(actor, perm=perms.REVIEW, channel_ok=True, refund=peek(refund_id))
    with transaction.atomic():
        refund = lock_refund(refund_id, with_lines=True)
        if not can_proceed(refund.accept_alternative):
            raise RefundNotAllowed(f"{refund.number} has no alternative on offer.")
        move(refund, "accept_alternative", actor=actor, fields=["resolved_at", "alternative"])
        if refund.alternative.get("kind") == "expedite":
            Shipment.objects.filter(order_id=refund.order_id, delivered_at__isnull=True).update(expedited_at=timezone.now())
        release_holds(refund)
        notify_customer(refund=refund, event="alternative_accepted", context=refund.alternative)
    return refund


def refund_decline_alternative(*, refund_id: int, actor: Actor) -> RefundRequest:
    require(actor, perm=perms.REVIEW, channel_ok=True, refund=peek(refund_id))
    with transaction.atomic():
        refund = lock_refund(refund_id)
        if not can_proceed(refund.decline_alternative):
            raise RefundNotAllowed(f"{refund.number} has no alternative on offer.")
        move(refund, "decline_alternative", actor=actor, fields=["alternative"])
        notify_staff(
            role="support", event="refund_escalated", refund=refund, context={"reason": "the customer declined the alternative"}
        )
    return refund


def refund_resume(*, refund_id: int, actor: Actor, message: str = "") -> RefundRequest:
    """The customer answered (channel) or the wait timed out (system): back to review."""
    require(actor, channel_ok=True, system_ok=True, perm=perms.REVIEW, refund=peek(refund_id))
    with transaction.atomic():
        refund = lock_refund(refund_id)
        if not can_proceed(refund.resume):
            raise RefundNotAllowed(f"{refund.number} is not waiting for an answer from the customer.")
        move(refund, "resume", actor=actor, note=message or ("no answer in time" if actor.is_system else ""))
        if message and refund.customer_id:
            CustomerMessage.objects.create(
                customer_id=refund.customer_id, order_id=refund.order_id, channel=refund.channel, direction="in", body=message
            )
    return refund


def refund_withdraw(*, refund_id: int, actor: Actor, note: str = "") -> RefundRequest:
    require(actor, perm=perms.REVIEW, channel_ok=True, refund=peek(refund_id))
    with transaction.atomic():
        refund = lock_refund(refund_id, with_lines=True)
        move(refund, "withdraw", actor=actor, note=note, fields=["withdrawn_at"])
        release_holds(refund)
        notify_customer(refund=refund, event="refund_withdrawn")
    return refund


def refund_record_verdict(*, refund_id: int, actor: Actor, verdict: str) -> RefundRequest:
    """A staff verdict on a decided escalated request (feeds the abuse figures)."""
    require(actor, perm=perms.RECORD_VERDICT)
    if verdict not in RefundRequest.Verdict.values:
        raise RefundValidationError({"verdict": [f"Use one of {', '.join(RefundRequest.Verdict.values)}."]})
    with transaction.atomic():
        refund = lock_refund(refund_id)
        if not refund.escalation_reason or refund.state in (State.SUBMITTED, State.UNDER_REVIEW, State.AWAITING_CUSTOMER):
            raise RefundNotAllowed(f"{refund.number} is not a decided escalated request.")
        refund.verdict, refund.verdict_by, refund.verdict_at = verdict, actor.user, timezone.now()
        refund.save(update_fields=["verdict", "verdict_by", "verdict_at", "updated_at"])
        record_event(refund, actor=actor, action="verdict", from_state=refund.state, note=verdict, public=False)
        # "confirmed abuse" is a risk feature: the profile follows the verdict after commit.
        customer_changed.send(sender=RefundRequest, customer_id=refund.customer_id)
    return refund
