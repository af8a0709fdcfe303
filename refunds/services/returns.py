import logging

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django_fsm import can_proceed

from config.actors import SYSTEM, Actor
from config.uploads import clean_photo
from notifications.services import notify_customer, notify_staff
from orders.models import TrackingEvent, TrackingStatus
from orders.services import tracking_event_record
from refunds import permissions as perms
from refunds.errors import (
    NotFound,
    RefundNotAllowed,
    RefundValidationError,
)
from refunds.models import (
    Inspection,
    RefundRequest,
    ReturnParcel,
    stored_label,
)
from refunds.services.base import State, lock_refund, move, peek, require
from refunds.services.evaluation import create_payouts
from refunds.services.holds import release_holds

logger = logging.getLogger(__name__)

# --- returns -----------------------------------------------------------------------------


def return_ship(*, refund_id: int, actor: Actor, carrier: str, tracking_number: str) -> RefundRequest:
    """The customer's return parcel is on its way (channel), or its tracking was first seen."""
    require(actor, channel_ok=True, perm=perms.REVIEW, refund=peek(refund_id))
    if not carrier or not tracking_number:
        raise RefundValidationError({"tracking_number": ["Carrier and tracking number are required."]})
    with transaction.atomic():
        refund = lock_refund(refund_id)
        if not can_proceed(refund.return_shipped):
            raise RefundNotAllowed(f"{refund.number} is {refund.get_state_display().lower()}; no return is due.")
        parcel = ReturnParcel.objects.select_for_update().get(request=refund)
        parcel.carrier, parcel.tracking_number, parcel.shipped_at = carrier, tracking_number, timezone.now()
        try:
            with transaction.atomic():
                parcel.save(update_fields=["carrier", "tracking_number", "shipped_at"])
        except IntegrityError:
            raise RefundValidationError({"tracking_number": ["This tracking number belongs to another return."]}) from None
        move(refund, "return_shipped", actor=actor, note=f"{carrier} {tracking_number}")
        # Carrier scans that arrived before the customer told us the tracking number.
        TrackingEvent.objects.filter(
            carrier=carrier, tracking_number=tracking_number, shipment__isnull=True, return_parcel__isnull=True
        ).update(return_parcel=parcel)
    return refund


def carrier_scan_record(
    *, carrier, tracking_number: str, status: str, occurred_at, location: str = ""
) -> tuple[TrackingEvent, bool]:
    """A carrier's scan (the webhook): kept once by the order book, and when it is a return
    parcel's pick-up or transit scan, its request moves to `return_in_transit`. A scan for a
    tracking number nobody knows yet is kept and matched when the customer ships
    (`return_ship`). Returns (event, created); a replay changes nothing."""
    with transaction.atomic():
        event, created = tracking_event_record(
            carrier=carrier, tracking_number=tracking_number, status=status, occurred_at=occurred_at, location=location
        )
        if not created or event.shipment_id is not None:
            return event, created
        parcel = ReturnParcel.objects.filter(carrier=carrier.code, tracking_number=tracking_number).first()
        if parcel is not None:
            TrackingEvent.objects.filter(pk=event.pk).update(return_parcel=parcel)
            event.return_parcel = parcel
            if status in (TrackingStatus.PICKED_UP, TrackingStatus.IN_TRANSIT, TrackingStatus.OUT_FOR_DELIVERY):
                return_tracking_seen(refund_id=parcel.request_id, actor=SYSTEM)
    return event, True


def return_tracking_seen(*, refund_id: int, actor: Actor = SYSTEM) -> RefundRequest:
    """A carrier scan of the return parcel: awaiting_return → return_in_transit (no-op otherwise)."""
    with transaction.atomic():
        refund = lock_refund(refund_id)
        if can_proceed(refund.return_shipped):
            move(refund, "return_shipped", actor=actor, note="carrier scan")
    return refund


def find_return(code: str) -> ReturnParcel | None:
    code = (code or "").strip()
    if not code:
        return None
    return (
        ReturnParcel.objects.filter(Q(return_code=code) | Q(tracking_number=code))
        .select_related("request")
        .order_by("-pk")
        .first()
    )


def return_receive(*, code: str, actor: Actor) -> RefundRequest:
    """The warehouse scanned a return code or tracking number: the parcel is received."""
    require(actor, perm=perms.RECEIVE_RETURN)
    parcel = find_return(code)
    if parcel is None:
        raise NotFound(f"No return is expected with code or tracking number '{code.strip()}'.")
    with transaction.atomic():
        refund = lock_refund(parcel.request_id)
        if refund.state == State.RECEIVED or parcel.received_at:
            raise RefundNotAllowed(f"{refund.number} was already received.")
        if not can_proceed(refund.receive):
            raise RefundNotAllowed(f"{refund.number} is {refund.get_state_display().lower()}; no return is expected.")
        ReturnParcel.objects.filter(pk=parcel.pk).update(received_at=timezone.now(), received_by=actor.user)
        move(refund, "receive", actor=actor, note=f"scanned {code.strip()}")
        notify_customer(refund=refund, event="parcel_received")
        notify_staff(role="finance", event="parcel_received", refund=refund)
    return refund


def return_inspect(*, refund_id: int, actor: Actor, grade: str, disposition: str, note: str = "", photo=None) -> RefundRequest:
    """Record the inspection: passed → ready_for_payout (finance is told); failed → back to support.
    A photo that is not a JPEG/PNG/WebP within the caps is refused and nothing is stored."""
    require(actor, perm=perms.RECEIVE_RETURN)
    # Decoded and re-encoded before the transaction: no image work while the request is locked.
    stored_photo = clean_photo(photo) if photo else None
    errors = {}
    if grade not in Inspection.Grade.values:
        errors["grade"] = [f"Use one of {', '.join(Inspection.Grade.values)}."]
    if disposition not in Inspection.Disposition.values:
        errors["disposition"] = [f"Use one of {', '.join(Inspection.Disposition.values)}."]
    if errors:
        raise RefundValidationError(errors)
    inspection = None
    try:
        with transaction.atomic():
            refund = lock_refund(refund_id)
            passed = grade in Inspection.PASSING_GRADES
            if not can_proceed(refund.inspection_passed if passed else refund.inspection_failed):
                raise RefundNotAllowed(
                    f"{refund.number} is {refund.get_state_display().lower()}; only a received parcel is inspected."
                )
            inspection = Inspection.objects.create(
                request=refund,
                grade=grade,
                disposition=disposition,
                note=note,
                photo=stored_photo or "",
                passed=passed,
                inspected_by=actor.user,
            )
            if passed:
                move(refund, "inspection_passed", actor=actor, note=f"{grade}, {disposition}. {note}".strip())
                create_payouts(refund)
            else:
                reason = f"inspection failed: {stored_label(Inspection.Grade(grade).label).lower()}" + (
                    f" — {note}" if note else ""
                )
                move(refund, "inspection_failed", actor=actor, reason=reason, note=reason, fields=["escalation_reason"])
                notify_staff(role="support", event="refund_escalated", refund=refund, context={"reason": reason})
    except BaseException:
        # The photo reached the storage before the row's INSERT; a rolled-back inspection
        # leaves no file behind.
        if inspection is not None and inspection.photo:
            inspection.photo.storage.delete(inspection.photo.name)
        raise
    return refund


def refund_expire(*, refund_id: int, actor: Actor = SYSTEM) -> RefundRequest:
    """No parcel within the return window: awaiting_return → cancelled, hold released."""
    require(actor, system_ok=True)
    with transaction.atomic():
        refund = lock_refund(refund_id, with_lines=True)
        parcel = ReturnParcel.objects.filter(request=refund).first()
        if can_proceed(refund.expire) and parcel is not None and parcel.deadline > timezone.now():
            raise RefundNotAllowed(f"{refund.number} can still be returned until {parcel.deadline:%Y-%m-%d %H:%M}.")
        move(refund, "expire", actor=actor, note="no parcel within the return window", fields=["cancelled_at"])
        release_holds(refund)
        notify_customer(refund=refund, event="return_expired")
    return refund
