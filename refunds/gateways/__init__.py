"""Payment-gateway adapters, chosen by `settings.PAYMENT_GATEWAY["BACKEND"]` like Django's
e-mail backends.

An adapter does three things, each keyed by the payout's own idempotency key (Alipay's
`out_request_no`, WeChat Pay's `out_refund_no`, Stripe's `Idempotency-Key`):

- `refund(...)` pays money back to the original payment; a repeated key answers the first
  result and never pays twice. It raises `GatewayDeclined` only when the provider *said* it
  did not pay; anything else that goes wrong (a timeout, a dropped connection, an answer we
  can't read) is `GatewayUnavailable`: the outcome is unknown, never a failure.
- `refund_status(...)` asks what happened to a key (the providers' refund query APIs).
- `refunds_for_day(...)` lists the refunds the provider made on a day (its refund report),
  for reconciliation against our books.

The simulated gateway (`refunds.gateways.simulated`) keeps its own ledger in the database and
can be told to misbehave, so tests and the demo can count what was really paid.
"""

from django.conf import settings
from django.utils.module_loading import import_string

from refunds.gateways.base import (
    BaseGateway,
    GatewayDeclined,
    GatewayError,
    GatewayRefund,
    GatewayResult,
    GatewayTimeout,
    GatewayUnavailable,
    RefundStatus,
    StatusAnswer,
)

__all__ = [
    "BaseGateway",
    "GatewayDeclined",
    "GatewayError",
    "GatewayRefund",
    "GatewayResult",
    "GatewayTimeout",
    "GatewayUnavailable",
    "RefundStatus",
    "StatusAnswer",
    "get_gateway",
]


def get_gateway() -> BaseGateway:
    return import_string(settings.PAYMENT_GATEWAY["BACKEND"])()
