"""The simulated gateway's adapter: idempotent like a real one, and able to misbehave on demand."""

import time
import uuid
from datetime import datetime, timedelta
from datetime import time as dtime

from django.db import IntegrityError, transaction
from django.utils import timezone

from refunds.gateways.base import (
    BaseGateway,
    GatewayDeclined,
    GatewayRefund,
    GatewayResult,
    GatewayTimeout,
    RefundStatus,
    StatusAnswer,
)


def _models():
    # The adapter is imported from settings before the app registry may be ready.
    from refunds.gateways.simulated import models

    return models


class SimulatedGateway(BaseGateway):
    def refund(self, *, idempotency_key, payment_reference, amount, currency):
        m = _models()
        control = self._take_mode()
        if control.delay_ms:
            time.sleep(control.delay_ms / 1000)
        Mode = m.SimulatedGatewayControl.Mode
        if control.mode == Mode.FAIL:
            raise GatewayDeclined("declined by the gateway (simulated)")
        if control.mode == Mode.DECLINE_PERMANENT:
            raise GatewayDeclined("declined by the gateway: card closed (simulated)", permanent=True)
        if control.mode == Mode.TIMEOUT:
            raise GatewayTimeout("gateway did not answer in time (simulated)")
        entry = self._pay(idempotency_key, payment_reference, amount, currency)
        if control.mode == Mode.TIMEOUT_AFTER_SUCCESS:
            raise GatewayTimeout("gateway did not answer in time (simulated, the refund went through)")
        return GatewayResult(reference=entry.reference)

    def refund_status(self, *, idempotency_key):
        m = _models()
        control = m.SimulatedGatewayControl.objects.order_by("pk").first()
        status_mode = control.status_mode if control else m.SimulatedGatewayControl.StatusMode.OK
        if status_mode == m.SimulatedGatewayControl.StatusMode.TIMEOUT:
            raise GatewayTimeout("the refund query did not answer in time (simulated)")
        if status_mode == m.SimulatedGatewayControl.StatusMode.PROCESSING:
            return StatusAnswer(RefundStatus.UNKNOWN, detail="the gateway says the refund is still processing (simulated)")
        entry = m.GatewayLedgerEntry.objects.filter(idempotency_key=idempotency_key).first()
        if entry is None:
            return StatusAnswer(RefundStatus.NOT_PAID, detail="no refund under this key (simulated)")
        return StatusAnswer(RefundStatus.PAID, reference=entry.reference, amount=entry.amount, detail="refunded (simulated)")

    def refunds_for_day(self, *, day):
        m = _models()
        tz = timezone.get_current_timezone()
        start = datetime.combine(day, dtime.min, tzinfo=tz)
        entries = m.GatewayLedgerEntry.objects.filter(created_at__gte=start, created_at__lt=start + timedelta(days=1))
        return [
            GatewayRefund(
                reference=e.reference,
                idempotency_key=e.idempotency_key,
                payment_reference=e.payment_reference,
                amount=e.amount,
                currency=e.currency,
                created_at=e.created_at,
            )
            for e in entries.order_by("created_at", "pk")
        ]

    @staticmethod
    def _pay(idempotency_key, payment_reference, amount, currency):
        ledger = _models().GatewayLedgerEntry
        existing = ledger.objects.filter(idempotency_key=idempotency_key).first()
        if existing:
            return existing
        try:
            with transaction.atomic():
                return ledger.objects.create(
                    idempotency_key=idempotency_key,
                    payment_reference=payment_reference,
                    amount=amount,
                    currency=currency,
                    reference=f"SIM-{uuid.uuid4().hex[:16].upper()}",
                )
        except IntegrityError:
            return ledger.objects.get(idempotency_key=idempotency_key)

    @staticmethod
    def _take_mode():
        """Read the control row and use up one of its `remaining` calls."""
        control_model = _models().SimulatedGatewayControl
        with transaction.atomic():
            control = control_model.objects.select_for_update().order_by("pk").first()
            if control is None:
                return control_model(mode=control_model.Mode.OK)
            snapshot = control_model(mode=control.mode, remaining=control.remaining, delay_ms=control.delay_ms)
            if control.remaining == 1:
                control.mode = control_model.Mode.OK
                control.remaining = 0
                control.save(update_fields=["mode", "remaining"])
            elif control.remaining > 1:
                control.remaining -= 1
                control.save(update_fields=["remaining"])
            return snapshot

    @staticmethod
    def set_mode(mode: str, *, calls: int = 0, delay_ms: int = 0, status_mode: str = "ok") -> None:
        """Make the next `calls` refund calls (0: all calls) behave as `mode`, and every refund
        query as `status_mode`."""
        control_model = _models().SimulatedGatewayControl
        control_model.objects.all().delete()
        control_model.objects.create(mode=mode, remaining=calls, delay_ms=delay_ms, status_mode=status_mode)

    @staticmethod
    def plant_refund(*, idempotency_key: str, payment_reference: str, amount, currency: str = "CNY", at=None):
        """Write a refund into the gateway's books as if it had paid one (tests, the demo's
        reconciliation): a refund our books may know nothing about."""
        return _models().GatewayLedgerEntry.objects.create(
            idempotency_key=idempotency_key,
            payment_reference=payment_reference,
            amount=amount,
            currency=currency,
            reference=f"SIM-{uuid.uuid4().hex[:16].upper()}",
            created_at=at or timezone.now(),
        )
