"""Payment-gateway adapters, chosen by `settings.PAYMENT_GATEWAY["BACKEND"]`.

An adapter refunds money to the original payment. It is always called with the payout's
own idempotency key and must answer a repeated key with the first result, never pay twice.
The simulated gateway keeps its own ledger so tests can count what was really paid.
"""

import time
import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.module_loading import import_string


class GatewayError(Exception):
    """The gateway answered and declined the refund."""


class GatewayTimeout(GatewayError):
    """No answer in time: the refund may or may not have happened."""


@dataclass(frozen=True)
class GatewayResult:
    reference: str


class BaseGateway:
    def refund(self, *, idempotency_key: str, payment_reference: str, amount: Decimal, currency: str) -> GatewayResult:
        raise NotImplementedError


class SimulatedGateway(BaseGateway):
    """A gateway in the database: idempotent like a real one, and able to misbehave on demand."""

    def refund(self, *, idempotency_key, payment_reference, amount, currency):
        from refunds.models import GatewayLedgerEntry, SimulatedGatewayControl

        mode = self._take_mode(SimulatedGatewayControl)
        if mode.delay_ms:
            time.sleep(mode.delay_ms / 1000)
        if mode.mode == SimulatedGatewayControl.Mode.FAIL:
            raise GatewayError("declined by the gateway (simulated)")
        if mode.mode == SimulatedGatewayControl.Mode.TIMEOUT:
            raise GatewayTimeout("gateway did not answer in time (simulated)")
        entry = self._pay(GatewayLedgerEntry, idempotency_key, payment_reference, amount, currency)
        if mode.mode == SimulatedGatewayControl.Mode.TIMEOUT_AFTER_SUCCESS:
            raise GatewayTimeout("gateway did not answer in time (simulated, the refund went through)")
        return GatewayResult(reference=entry.reference)

    @staticmethod
    def _pay(ledger, idempotency_key, payment_reference, amount, currency):
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
    def _take_mode(control_model):
        """Read the control row and use up one of its `remaining` calls."""
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
    def set_mode(mode: str, *, calls: int = 0, delay_ms: int = 0) -> None:
        """Make the next `calls` calls (0: all calls) behave as `mode`."""
        from refunds.models import SimulatedGatewayControl

        SimulatedGatewayControl.objects.all().delete()
        SimulatedGatewayControl.objects.create(mode=mode, remaining=calls, delay_ms=delay_ms)


def get_gateway() -> BaseGateway:
    return import_string(settings.PAYMENT_GATEWAY["BACKEND"])()
