"""Reconciliation against the gateway's books, not only our own.

Once a day (and on finance's button) the refunds the gateway says it made on a day are
compared with the payouts our books say succeeded by the original payment that day. Every
disagreement becomes a `ReconciliationDifference` and an alert to finance; the code never
"fixes" one: a difference stays open until a person writes down what was done about it.

Matching is by the payout's idempotency key, which the gateway keeps with each refund
(Alipay's `out_request_no`, WeChat Pay's `out_refund_no`, Stripe's metadata):

- a refund of the gateway's whose key is no payout of ours, or a payout that our books do
  not show as succeeded (voided, failed, still unknown) → paid there, not here;
- a refund whose amount is not the payout's → the amounts differ;
- more refunds of one payment in the gateway's report than our succeeded payouts of it,
  for more money → paid twice;
- a payout of ours that succeeded that day and is not in the report → the gateway is asked
  about it (it may sit on the next day's report); not paid there → paid here, not there.
"""

import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from config.actors import SYSTEM, Actor
from config.pii import redact
from notifications.services import notify_staff
from refunds import permissions as perms
from refunds.errors import ActionForbidden, RefundValidationError
from refunds.gateways import GatewayRefund, RefundStatus, get_gateway
from refunds.models import Payout, ReconciliationDifference, ReconciliationRun, RefundMethod
from refunds.selectors_finance import day_bounds

logger = logging.getLogger(__name__)

Kind = ReconciliationDifference.Kind


@dataclass(frozen=True)
class _Found:
    kind: str
    fingerprint: str
    payout: Payout | None = None
    payment_reference: str = ""
    gateway_reference: str = ""
    idempotency_key: str = ""
    gateway_amount: Decimal | None = None
    our_amount: Decimal | None = None
    currency: str = ""


def _require(actor: Actor) -> None:
    if actor.is_system:
        return
    if not actor.is_user or not actor.has_perm(perms.RECONCILE_PAYOUT):
        raise ActionForbidden(f"{actor.label} may not reconcile payouts.")


def reconciliation_run(*, day: date, actor: Actor = SYSTEM) -> ReconciliationRun:
    """Compare `day`'s refunds in the gateway's books with our succeeded payouts; record the
    differences and alert finance about new ones. Outside a transaction: the gateway is asked
    with no lock held. Running a day again updates the differences it finds again."""
    _require(actor)
    if day > timezone.localdate():
        raise RefundValidationError({"day": ["A day that has not happened yet can't be reconciled."]})
    run = ReconciliationRun.objects.create(day=day, requested_by=actor.user)
    gateway = get_gateway()
    try:
        theirs = gateway.refunds_for_day(day=day)
        ours = list(_our_payouts(day))
        found = _compare(day, theirs, ours, gateway)
    except Exception as exc:  # noqa: BLE001 - the run is recorded as failed, with the reason
        logger.exception("reconciliation of %s failed", day)
        ReconciliationRun.objects.filter(pk=run.pk).update(
            state=ReconciliationRun.State.FAILED, error=redact(f"{type(exc).__name__}: {exc}")[:2000], finished_at=timezone.now()
        )
        run.refresh_from_db()
        notify_staff(role="finance", event="reconciliation_failed", context={"day": day.isoformat(), "error": run.error})
        return run
    with transaction.atomic():
        new = _record(run, day, found)
        run.state = ReconciliationRun.State.DIFFERENCES if found else ReconciliationRun.State.CLEAN
        run.gateway_count, run.our_count = len(theirs), len(ours)
        run.gateway_totals = _totals((r.currency, r.amount) for r in theirs)
        run.our_totals = _totals((p.currency, p.amount) for p in ours)
        run.differences = len(found)
        run.finished_at = timezone.now()
        run.save()
        if new:
            notify_staff(
                role="finance",
                event="reconciliation_differences",
                context={"day": day.isoformat(), "count": str(len(found)), "new": str(new)},
            )
    return run


def _our_payouts(day: date):
    lo, hi = day_bounds(day, day)
    return (
        Payout.objects.filter(
            state=Payout.State.SUCCEEDED, method=RefundMethod.ORIGINAL_PAYMENT, succeeded_at__gte=lo, succeeded_at__lt=hi
        )
        .select_related("request__order__payment")
        .order_by("pk")
    )


def _payment_reference(payout: Payout) -> str:
    payment = getattr(payout.request.order, "payment", None)
    return payment.reference if payment else ""


def _compare(day: date, theirs: list[GatewayRefund], ours: list[Payout], gateway) -> list[_Found]:
    found: list[_Found] = []
    by_key = {
        str(p.idempotency_key): p for p in Payout.objects.filter(idempotency_key__in=_uuids(r.idempotency_key for r in theirs))
    }
    seen_keys: dict[str, int] = defaultdict(int)
    for r in theirs:
        seen_keys[r.idempotency_key] += 1
        payout = by_key.get(r.idempotency_key)
        common = {
            "payout": payout,
            "payment_reference": r.payment_reference,
            "gateway_reference": r.reference,
            "idempotency_key": r.idempotency_key,
            "gateway_amount": r.amount,
            "currency": r.currency,
        }
        if payout is None or payout.state != Payout.State.SUCCEEDED:
            found.append(
                _Found(
                    Kind.PAID_THERE_NOT_HERE,
                    f"there:{r.reference}",
                    our_amount=payout.amount if payout else None,
                    **common,
                )
            )
        elif payout.amount != r.amount:
            found.append(_Found(Kind.AMOUNT_DIFFERS, f"amount:{r.reference}", our_amount=payout.amount, **common))
    # One payment refunded more often, and for more, in the gateway's books than in ours.
    theirs_by_payment: dict[str, list[GatewayRefund]] = defaultdict(list)
    for r in theirs:
        theirs_by_payment[r.payment_reference].append(r)
    ours_by_payment: dict[str, list[Payout]] = defaultdict(list)
    for p in ours:
        ours_by_payment[_payment_reference(p)].append(p)
    for payment, refunds in theirs_by_payment.items():
        mine = ours_by_payment.get(payment, [])
        total_theirs = sum((r.amount for r in refunds), Decimal("0.00"))
        total_mine = sum((p.amount for p in mine), Decimal("0.00"))
        # (A single refund we don't have is "paid there, not here", listed above.)
        if len(refunds) >= 2 and len(refunds) > len(mine) and total_theirs > total_mine:
            found.append(
                _Found(
                    Kind.PAID_TWICE,
                    f"twice:{payment}:{day.isoformat()}",
                    payment_reference=payment,
                    gateway_reference=", ".join(r.reference for r in refunds)[:200],
                    gateway_amount=total_theirs,
                    our_amount=total_mine,
                    currency=refunds[0].currency,
                )
            )
    # Ours, not in the day's report: it may be on a neighbouring day's; the gateway says.
    for p in ours:
        key = str(p.idempotency_key)
        if key in seen_keys:
            continue
        answer = gateway.refund_status(idempotency_key=key)
        if answer.status == RefundStatus.PAID:
            continue
        found.append(
            _Found(
                Kind.PAID_HERE_NOT_THERE,
                f"here:{p.pk}",
                payout=p,
                payment_reference=_payment_reference(p),
                gateway_reference=p.gateway_reference,
                idempotency_key=key,
                our_amount=p.amount,
                currency=p.currency,
            )
        )
    return found


def _uuids(keys) -> list[str]:
    out = []
    for k in keys:
        try:
            out.append(str(uuid.UUID(k)))
        except (ValueError, TypeError):
            continue  # not a key of ours at all: it stays "paid there, not here"
    return out


def _totals(pairs) -> dict[str, str]:
    totals: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
    for currency, amount in pairs:
        totals[currency] += amount
    return {c: str(t) for c, t in sorted(totals.items())}


def _record(run: ReconciliationRun, day: date, found: list[_Found]) -> int:
    """Upsert the differences by fingerprint; return how many are new."""
    now = timezone.now()
    existing = set(
        ReconciliationDifference.objects.filter(fingerprint__in=[f.fingerprint for f in found]).values_list(
            "fingerprint", flat=True
        )
    )
    new = 0
    for f in found:
        values = {
            "kind": f.kind,
            "payout": f.payout,
            "payment_reference": f.payment_reference,
            "gateway_reference": f.gateway_reference,
            "idempotency_key": f.idempotency_key,
            "gateway_amount": f.gateway_amount,
            "our_amount": f.our_amount,
            "currency": f.currency,
            "last_seen_at": now,
            "last_run": run,
        }
        if f.fingerprint in existing:
            ReconciliationDifference.objects.filter(fingerprint=f.fingerprint).update(**values)
        else:
            ReconciliationDifference.objects.create(fingerprint=f.fingerprint, day=day, first_seen_at=now, **values)
            new += 1
    return new


def reconciliation_resolve(*, difference_ids: list[int], actor: Actor, note: str) -> int:
    """A person says what was done about these differences (money recovered from the customer,
    a refund booked by hand, …). The note is required; resolved ones are left alone."""
    _require(actor)
    if actor.is_system:
        raise ActionForbidden("Only a person resolves a difference with the gateway's books.")
    if not note.strip():
        raise RefundValidationError({"note": ["Write down what was done about it."]})
    with transaction.atomic():
        return ReconciliationDifference.objects.filter(pk__in=difference_ids, resolved_at__isnull=True).update(
            resolved_at=timezone.now(), resolved_by=actor.user, resolution_note=note.strip()
        )


def reconcile_yesterday() -> int:
    """The daily job: yesterday's books (and the day before, which a late report may complete)."""
    today = timezone.localdate()
    runs = [reconciliation_run(day=today - timedelta(days=n)) for n in (1, 2)]
    return sum(r.differences for r in runs)
