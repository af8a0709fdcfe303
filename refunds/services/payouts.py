import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django_fsm import TransitionNotAllowed, can_proceed

from config.actors import SYSTEM, Actor
from config.pii import redact
from config.q2 import enqueue_on_commit
from notifications.services import notify_customer, notify_staff
from orders.models import Order
from refunds import permissions as perms
from refunds.errors import (
    ActionForbidden,
    RefundNotAllowed,
    RefundValidationError,
)
from refunds.gateways import (
    GatewayDeclined,
    GatewayResult,
    GatewayTimeout,
    GatewayUnavailable,
    RefundStatus,
    StatusAnswer,
    get_gateway,
)
from refunds.models import (
    Coupon,
    Payout,
    PayoutBatch,
    PayoutSettings,
    RefundEvent,
    RefundMethod,
    RefundRequest,
    WalletEntry,
    move_set,
    sources_of,
    target_of,
)
from refunds.selectors_finance import (
    APPROVAL_COLUMNS,
    APPROVE,
    APPROVED_FIRST,
    FIRST_APPROVAL,
    NOT_PENDING,
    OWN_REQUEST,
    approval_outcome,
)
from refunds.services.base import State, cents, lock_payout, move, record_event, require
from refunds.services.holds import release_lines, request_moves

logger = logging.getLogger(__name__)

# --- payouts -----------------------------------------------------------------------------


def four_eyes_limit() -> Decimal:
    """Payouts above this need two finance approvers: the admin's value (`PayoutSettings`),
    else the deployment's setting. A raise applies only once a second admin approved it."""
    value = PayoutSettings.objects.filter(pk=1).values_list("four_eyes_above", flat=True).first()
    return value if value is not None else Decimal(settings.REFUND_DESK["PAYOUT_FOUR_EYES_ABOVE"])


def payout_approve(*, payout_id: int, actor: Actor) -> Payout:
    """Finance approves one payout; execution is queued after commit.

    The person who approved the request can't approve its payout, and a payout above the
    four-eyes limit needs two different finance approvers.
    """
    require(actor, perm=perms.APPROVE_PAYOUT)
    with transaction.atomic():
        payout = lock_payout(payout_id)
        refund = payout.request
        limit = four_eyes_limit()
        # The rule of the bulk approval and the confirmation page, on this one locked row;
        # checked before the transition runs: a first approval of four-eyes does not move it.
        row = {
            "state": payout.state,
            "amount": payout.amount,
            "first_approved_by_id": payout.first_approved_by_id,
            "request__approved_by_id": refund.approved_by_id,
            "request__first_approved_by_id": refund.first_approved_by_id,
        }
        outcome = approval_outcome(row, user_id=actor.user.pk, limit=limit)
        if outcome == NOT_PENDING or not can_proceed(payout.approve):
            raise RefundNotAllowed(f"{payout} is {payout.get_state_display().lower()}; only a pending payout can be approved.")
        if outcome == OWN_REQUEST:
            raise ActionForbidden(f"{actor.label} approved {refund.number} and may not approve its payout.")
        if outcome == APPROVED_FIRST:
            raise ActionForbidden(f"{payout} is above {limit}: a second, different approver is needed.")
        if outcome == FIRST_APPROVAL:
            payout.record_first_approval(at=timezone.now(), by=actor.user)
            payout.save(update_fields=["first_approved_by", "first_approved_at", "updated_at"])
            record_event(
                refund, actor=actor, action="payout_first_approval", from_state=payout.state, payout=payout, public=False
            )
            return payout
        before = payout.state
        payout.approve(at=timezone.now(), by=actor.user)
        payout.save(update_fields=["state", "approved_at", "approved_by", "updated_at"])
        record_event(refund, actor=actor, action="payout_approve", from_state=before, payout=payout, public=False)
        enqueue_on_commit("refunds.tasks.payout_execute_task", payout.pk)
    return payout


@dataclass
class BulkApproval:
    approved: list[int]
    first_approvals: list[int]
    skipped: dict[int, str]
    batch: PayoutBatch | None


def payout_approve_bulk(*, payout_ids: list[int], actor: Actor, note: str = "") -> BulkApproval:
    """Approve many payouts in one set-based pass, with the same rules as `payout_approve`.

    Rows are locked together (by pk), checked, moved with one UPDATE per outcome (the
    approval by `move_set(Payout.approve)`: its sources, target and columns are the
    transition's), and each gets its own event. Refused rows are reported in `skipped`,
    never changed.
    """
    require(actor, perm=perms.APPROVE_PAYOUT)
    user_id = actor.user.pk
    limit = four_eyes_limit()
    now = timezone.now()
    ids = sorted(set(int(i) for i in payout_ids))
    with transaction.atomic():
        rows = list(
            Payout.objects.select_for_update(of=("self",), no_key=True)
            .filter(pk__in=ids)
            .order_by("pk")
            .values(*APPROVAL_COLUMNS)
        )
        skipped: dict[int, str] = {i: "no such payout" for i in set(ids) - {r["pk"] for r in rows}}
        approve, first = [], []
        # The confirmation page decides with the same function (`approval_outcome`).
        for r in rows:
            outcome = approval_outcome(r, user_id=user_id, limit=limit)
            if outcome == APPROVE:
                approve.append(r)
            elif outcome == FIRST_APPROVAL:
                first.append(r)
            elif outcome == NOT_PENDING:
                skipped[r["pk"]] = f"is {r['state']}"
            elif outcome == OWN_REQUEST:
                skipped[r["pk"]] = "you approved its refund request"
            else:
                skipped[r["pk"]] = "needs a second, different approver"
        batch = PayoutBatch.objects.create(created_by=actor.user, note=note) if approve else None
        if approve:
            move_set(
                Payout.objects.filter(pk__in=[r["pk"] for r in approve]),
                Payout.approve,
                at=now,
                by=actor.user,
                also={"batch": batch},
            )
        if first:
            Payout.objects.filter(pk__in=[r["pk"] for r in first]).update(
                first_approved_by=actor.user, first_approved_at=now, updated_at=now
            )
        RefundEvent.objects.bulk_create(
            [
                RefundEvent(
                    request_id=r["request_id"],
                    payout_id=r["pk"],
                    action="payout_approve",
                    from_state=r["state"],
                    to_state=target_of(Payout.approve),
                    actor_kind=RefundEvent.ActorKind.USER,
                    actor_user=actor.user,
                    at=now,
                    note=f"batch {batch}",
                )
                for r in approve
            ]
            + [
                RefundEvent(
                    request_id=r["request_id"],
                    payout_id=r["pk"],
                    action="payout_first_approval",
                    from_state=r["state"],
                    to_state=r["state"],
                    actor_kind=RefundEvent.ActorKind.USER,
                    actor_user=actor.user,
                    at=now,
                )
                for r in first
            ],
            batch_size=2000,
        )
        if batch is not None:
            enqueue_on_commit("refunds.tasks.payout_execute_batch_task", batch.pk)
    return BulkApproval(
        approved=[r["pk"] for r in approve], first_approvals=[r["pk"] for r in first], skipped=skipped, batch=batch
    )


OPEN_PAYOUT_STATES = [Payout.State.PENDING_APPROVAL, Payout.State.APPROVED, Payout.State.PROCESSING, Payout.State.FAILED]


def payout_void(*, payout_id: int, actor: Actor, note: str = "", reissue_method: str = "") -> Payout:
    """Void a pending or failed payout, optionally replacing it with a new pending payout of the
    same amount by `reissue_method` (a closed card paid as store credit instead).

    The last open payout of a request can only be voided with a replacement: otherwise the
    request would wait in `ready_for_payout` for money that nobody is going to pay.
    """
    require(actor, perm=perms.APPROVE_PAYOUT)
    if reissue_method and reissue_method not in RefundMethod.values:
        raise RefundValidationError({"reissue_method": [f"Use one of {', '.join(RefundMethod.values)}."]})
    with transaction.atomic():
        payout = lock_payout(payout_id)
        refund = payout.request
        before = payout.state
        if payout.state == Payout.State.OUTCOME_UNKNOWN:
            raise RefundNotAllowed(_unknown_sentence(payout, "voided or paid another way"))
        try:
            payout.void(at=timezone.now())
        except TransitionNotAllowed:
            raise RefundNotAllowed(f"{payout} is {payout.get_state_display().lower()}; it can't be voided.") from None
        others_open = refund.payouts.exclude(pk=payout.pk).filter(state__in=OPEN_PAYOUT_STATES).exists()
        if not reissue_method and not others_open:
            raise RefundNotAllowed(
                f"{payout} is the last open payout of {refund.number}; void it with a replacement method "
                "so the customer is still paid."
            )
        payout.save(update_fields=["state", "voided_at", "updated_at"])
        record_event(refund, actor=actor, action="payout_void", from_state=before, payout=payout, note=note, public=False)
        if reissue_method:
            replacement = Payout.objects.create(
                request=refund, method=reissue_method, amount=payout.amount, currency=payout.currency
            )
            record_event(
                refund,
                actor=actor,
                action="payout_reissue",
                from_state="",
                payout=replacement,
                note=f"replaces {payout}",
                public=False,
            )
    return payout


def payout_claim(*, payout_id: int, actor: Actor = SYSTEM) -> bool:
    """Take an approved payout for execution (`Payout.start` as one conditional UPDATE).
    Exactly one caller ever wins the claim."""
    # One source, so the event knows where the row came from; a second one would fail here.
    (before,) = sources_of(Payout.start)
    with transaction.atomic():
        claimed = move_set(Payout.objects.filter(pk=payout_id), Payout.start, at=timezone.now())
        if claimed:
            payout = Payout.objects.select_related("request").get(pk=payout_id)
            record_event(
                payout.request,
                actor=actor,
                action="payout_execute",
                from_state=before,
                payout=payout,
                public=False,
            )
    return bool(claimed)


def payout_retry(*, payout_id: int, actor: Actor) -> Payout:
    """Finance retries a failed payout with the same idempotency key."""
    require(actor, perm=perms.RETRY_PAYOUT)
    with transaction.atomic():
        payout = lock_payout(payout_id)
        before = payout.state
        if payout.state == Payout.State.OUTCOME_UNKNOWN:
            raise RefundNotAllowed(_unknown_sentence(payout, "retried"))
        if payout.state == Payout.State.FAILED and payout.failure_permanent:
            raise RefundNotAllowed(
                f"{payout} was declined for good ({payout.error}); void it and pay by store credit or coupon instead."
            )
        try:
            payout.retry(at=timezone.now())
        except TransitionNotAllowed:
            raise RefundNotAllowed(
                f"{payout} is {payout.get_state_display().lower()}; only a failed payout can be retried."
            ) from None
        payout.save(update_fields=["state", "processing_started_at", "attempts", "error", "updated_at"])
        record_event(payout.request, actor=actor, action="payout_retry", from_state=before, payout=payout, public=False)
        enqueue_on_commit("refunds.tasks.payout_send_task", payout.pk)
    return payout


def payout_execute(*, payout_id: int) -> Payout | None:
    """Claim an approved payout and pay it. Safe to call any number of times, concurrently."""
    if not payout_claim(payout_id=payout_id):
        return None
    return payout_send(payout_id=payout_id)


def payout_send(*, payout_id: int) -> Payout:
    """Pay a payout that is `processing`. Outside any transaction: no lock is held during I/O.

    The gateway gets the payout's idempotency key, so calling this again for the same payout
    (a crashed worker re-driven by the sweeper) never pays twice. Only an answer that says
    "not paid" fails the payout; anything else (a timeout, a dropped connection, an error
    of ours after the call) leaves its outcome unknown until the gateway is asked.
    """
    payout = Payout.objects.select_related("request__order__payment", "request__customer").get(pk=payout_id)
    if payout.state != Payout.State.PROCESSING:
        return payout
    try:
        result = _pay(payout)
    except GatewayDeclined as exc:
        return payout_record_result(payout_id=payout_id, declined=str(exc), permanent=exc.permanent)
    except Exception as exc:  # noqa: BLE001 - whatever went wrong, the money may have moved
        logger.warning(
            "payout %s: no answer that says whether it was paid: %s",
            payout,
            exc,
            exc_info=not isinstance(exc, GatewayUnavailable),  # our own error: keep its traceback
        )
        return payout_record_result(payout_id=payout_id, unknown=_describe_unknown(exc))
    return payout_record_result(payout_id=payout_id, reference=result.reference)


def _describe_unknown(exc: Exception) -> str:
    if isinstance(exc, GatewayTimeout):
        return f"timeout: {exc}"
    if isinstance(exc, GatewayUnavailable):
        return f"no answer: {exc}"
    return f"unexpected error ({type(exc).__name__}): {exc}"


def _unknown_sentence(payout: Payout, verb: str) -> str:
    answer = payout.status_answer or "not asked yet"
    return (
        f"{payout}'s outcome is unknown ({payout.error}): the gateway may have paid it. It can't be {verb} "
        f"until the gateway answers that it did not pay; it is being asked (last answer: {answer})."
    )


def _pay(payout: Payout) -> GatewayResult:
    refund = payout.request
    if payout.method == RefundMethod.ORIGINAL_PAYMENT:
        payment = getattr(refund.order, "payment", None)
        return get_gateway().refund(
            idempotency_key=str(payout.idempotency_key),
            payment_reference=payment.reference if payment else "",
            amount=payout.amount,
            currency=payout.currency,
        )
    if payout.method == RefundMethod.STORE_CREDIT:
        entry, _ = WalletEntry.objects.get_or_create(
            payout=payout,
            defaults={
                "customer_id": refund.customer_id,
                "amount": payout.amount,
                "currency": payout.currency,
                "note": f"refund {refund.number}",
            },
        )
        return GatewayResult(reference=f"WALLET-{entry.pk}")
    coupon = Coupon.objects.filter(payout=payout).first()
    if coupon is None:
        try:
            with transaction.atomic():
                coupon = Coupon.objects.create(
                    payout=payout,
                    code=secrets.token_hex(6).upper(),
                    customer_id=refund.customer_id,
                    amount=payout.amount,
                    currency=payout.currency,
                    expires_at=timezone.now() + timedelta(days=settings.REFUND_DESK["COUPON_VALID_DAYS"]),
                )
        except IntegrityError:
            coupon = Coupon.objects.get(payout=payout)
    return GatewayResult(reference=f"COUPON-{coupon.code}")


def payout_record_result(
    *,
    payout_id: int,
    reference: str = "",
    declined: str = "",
    permanent: bool = False,
    unknown: str = "",
    actor: Actor = SYSTEM,
) -> Payout:
    """Record what the gateway's call came to: paid (`reference`), `declined` (it said it did
    not pay; `permanent` if retrying cannot help), or `unknown` (no answer that says). Only a
    `processing` payout moves; a late duplicate is ignored.

    On success the order's refunded total grows and, once every payout of the request has
    succeeded, the request becomes `refunded` and its lines' held units become refunded.
    """
    if sum(map(bool, (reference, declined, unknown))) != 1:
        raise ValueError("Give exactly one of reference, declined or unknown.")
    # The gateway's words are stored, shown and sent to finance: masked like a log line.
    declined, unknown = redact(declined), redact(unknown)
    with transaction.atomic():
        payout = lock_payout(payout_id)
        if payout.state != Payout.State.PROCESSING:
            return payout
        now = timezone.now()
        if unknown:
            payout.lose_track(at=now, error=unknown, check_at=now + _status_backoff(0))
            payout.save(
                update_fields=[
                    "state",
                    "outcome_unknown_at",
                    "error",
                    "status_checks",
                    "status_answer",
                    "next_status_check_at",
                    "updated_at",
                ]
            )
            record_event(
                payout.request,
                actor=actor,
                action="payout_outcome_unknown",
                from_state=Payout.State.PROCESSING,
                payout=payout,
                note=unknown,
                public=False,
            )
        elif declined:
            _record_failure(payout, error=declined, permanent=permanent, actor=actor)
        else:
            _record_success(payout, reference=reference, actor=actor)
    return payout


def _record_failure(payout: Payout, *, error: str, permanent: bool, actor: Actor) -> None:
    before = payout.state
    payout.fail(at=timezone.now(), error=error, permanent=permanent)
    payout.save(update_fields=["state", "failed_at", "error", "failure_permanent", "next_status_check_at", "updated_at"])
    record_event(payout.request, actor=actor, action="payout_failed", from_state=before, payout=payout, note=error, public=False)
    notify_staff(role="finance", event="payout_failed", refund=payout.request, context={"payout": str(payout), "error": error})


def _record_success(payout: Payout, *, reference: str, actor: Actor, note: str = "") -> None:
    refund = payout.request
    before = payout.state
    payout.succeed(at=timezone.now(), reference=reference)
    payout.save(update_fields=["state", "succeeded_at", "gateway_reference", "error", "next_status_check_at", "updated_at"])
    record_event(
        refund,
        actor=actor,
        action="payout_succeeded",
        from_state=before,
        payout=payout,
        note=note or reference,
        public=False,
    )
    Order.objects.filter(pk=refund.order_id).update(
        refunded_total=cents(F("refunded_total") + payout.amount), held_total=cents(F("held_total") - payout.amount)
    )
    RefundRequest.objects.filter(pk=refund.pk).update(amount_paid=cents(F("amount_paid") + payout.amount))
    refund.refresh_from_db(fields=["amount_paid"])
    open_payouts = refund.payouts.exclude(state__in=[Payout.State.SUCCEEDED, Payout.State.VOIDED]).exists()
    if not open_payouts and refund.state == State.READY_FOR_PAYOUT:
        _complete(refund)


def _status_backoff(checks_so_far: int) -> timedelta:
    cfg = settings.REFUND_DESK
    seconds = cfg["PAYOUT_STATUS_CHECK_FIRST_SECONDS"] * (2 ** min(checks_so_far, 20))
    return timedelta(seconds=min(seconds, cfg["PAYOUT_STATUS_CHECK_MAX_SECONDS"]))


def payout_check_status(*, payout_id: int) -> Payout:
    """Ask what became of a payout whose outcome is unknown, and record the answer. Outside any
    transaction: no lock is held while the gateway is asked. Safe to run twice, concurrently."""
    payout = Payout.objects.select_related("request").get(pk=payout_id)
    if payout.state != Payout.State.OUTCOME_UNKNOWN:
        return payout
    try:
        answer = _status(payout)
    except Exception as exc:  # noqa: BLE001 - an unanswered question is an unknown answer
        logger.warning("payout %s: the status query failed: %s", payout, exc)
        answer = StatusAnswer(RefundStatus.UNKNOWN, detail=f"the query failed: {_describe_unknown(exc)}")
    return payout_record_status(payout_id=payout_id, answer=answer)


def _status(payout: Payout) -> StatusAnswer:
    """The gateway's answer for an original-payment payout; our own books for the others (a
    wallet entry or a coupon is written under the payout, once)."""
    if payout.method == RefundMethod.ORIGINAL_PAYMENT:
        return get_gateway().refund_status(idempotency_key=str(payout.idempotency_key))
    if payout.method == RefundMethod.STORE_CREDIT:
        entry = WalletEntry.objects.filter(payout=payout).first()
        if entry:
            return StatusAnswer(RefundStatus.PAID, reference=f"WALLET-{entry.pk}", amount=entry.amount)
        return StatusAnswer(RefundStatus.NOT_PAID, detail="no wallet entry was written")
    coupon = Coupon.objects.filter(payout=payout).first()
    if coupon:
        return StatusAnswer(RefundStatus.PAID, reference=f"COUPON-{coupon.code}", amount=coupon.amount)
    return StatusAnswer(RefundStatus.NOT_PAID, detail="no coupon was issued")


def payout_ask_gateway(*, payout_id: int, actor: Actor) -> Payout:
    """Finance asks the gateway about an unknown outcome now instead of at the next back-off;
    the question itself runs in a task (no I/O in the request, none under a lock)."""
    require(actor, perm=perms.APPROVE_PAYOUT)
    with transaction.atomic():
        payout = lock_payout(payout_id)
        if payout.state != Payout.State.OUTCOME_UNKNOWN:
            raise RefundNotAllowed(f"{payout} is {payout.get_state_display().lower()}; its outcome is known.")
        payout.next_status_check_at = timezone.now()
        payout.save(update_fields=["next_status_check_at", "updated_at"])
        enqueue_on_commit("refunds.tasks.payout_check_status_task", payout.pk)
    return payout


def payout_record_status(*, payout_id: int, answer: StatusAnswer, actor: Actor = SYSTEM) -> Payout:
    """Record the gateway's answer about an unknown outcome: paid → succeeded; not paid →
    failed (and only now may it be voided, reissued or retried); no answer → asked again
    later, and finance is alerted once it has gone unanswered `PAYOUT_STATUS_ALERT_AFTER` times."""
    with transaction.atomic():
        payout = lock_payout(payout_id)
        if payout.state != Payout.State.OUTCOME_UNKNOWN:
            return payout
        now = timezone.now()
        if answer.status == RefundStatus.PAID:
            note = f"the gateway, asked, says it paid: {answer.reference}"
            if answer.amount is not None and answer.amount != payout.amount:
                note += f" (it paid {answer.amount}, the payout is {payout.amount}: see reconciliation)"
            _record_success(payout, reference=answer.reference, actor=actor, note=note)
        elif answer.status == RefundStatus.NOT_PAID:
            _record_failure(
                payout, error=f"the gateway, asked, confirmed it did not pay: {answer.detail}", permanent=False, actor=actor
            )
        else:
            payout.record_status_answer(
                at=now, answer=answer.detail or "no answer", check_at=now + _status_backoff(payout.status_checks + 1)
            )
            payout.save(
                update_fields=["status_checks", "status_checked_at", "status_answer", "next_status_check_at", "updated_at"]
            )
            if payout.status_checks == settings.REFUND_DESK["PAYOUT_STATUS_ALERT_AFTER"]:
                notify_staff(
                    role="finance",
                    event="payout_outcome_unknown",
                    refund=payout.request,
                    context={
                        "payout": str(payout),
                        "error": payout.error,
                        "answer": payout.status_answer,
                        "checks": payout.status_checks,
                    },
                )
    return payout


def _complete(refund: RefundRequest) -> None:
    """Every payout succeeded: the held units become refunded, what was not paid is released."""
    release_lines(request_moves(refund), refunded=True)
    unpaid = refund.amount_requested - refund.amount_paid
    if unpaid:
        Order.objects.filter(pk=refund.order_id).update(held_total=cents(F("held_total") - unpaid))
    refund.holds_released_at = timezone.now()
    move(refund, "complete", actor=SYSTEM, fields=["refunded_at", "holds_released_at"])
    notify_customer(
        refund=refund,
        event="refund_paid",
        context={"amount": str(refund.amount_paid), "method": refund.get_refund_method_display()},
    )
