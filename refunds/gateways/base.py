"""The adapter interface and the answers an adapter gives."""

import enum
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal


class GatewayError(Exception):
    """Something went wrong talking to the gateway; see the subclasses for what it means."""


class GatewayDeclined(GatewayError):
    """The gateway answered, and its answer says the refund was **not** made.

    `permanent` when trying again cannot help (the card is closed, the payment is too old to
    refund): finance should pay by another method instead of retrying.
    """

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class GatewayUnavailable(GatewayError):
    """No answer we can trust (a timeout, a dropped connection, a reply we can't read): the
    refund may or may not have been made. Never a failure: the payout waits until
    `refund_status` says which."""


class GatewayTimeout(GatewayUnavailable):
    """No answer in time."""


@dataclass(frozen=True)
class GatewayResult:
    reference: str


class RefundStatus(enum.StrEnum):
    PAID = "paid"
    NOT_PAID = "not_paid"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class StatusAnswer:
    """What the gateway says became of one idempotency key.

    `NOT_PAID` only when the provider says so for good (no refund under that key, or one it
    closed as failed); a refund it is still processing is `UNKNOWN`.
    """

    status: RefundStatus
    reference: str = ""
    amount: Decimal | None = None
    detail: str = ""


@dataclass(frozen=True)
class GatewayRefund:
    """One line of the provider's refund report."""

    reference: str
    idempotency_key: str
    payment_reference: str
    amount: Decimal
    currency: str
    created_at: datetime


class BaseGateway:
    def refund(self, *, idempotency_key: str, payment_reference: str, amount: Decimal, currency: str) -> GatewayResult:
        """Pay `amount` back to the payment. Raises GatewayDeclined or GatewayUnavailable."""
        raise NotImplementedError

    def refund_status(self, *, idempotency_key: str) -> StatusAnswer:
        """What became of the refund asked for under this key. May raise GatewayUnavailable."""
        raise NotImplementedError

    def refunds_for_day(self, *, day: date) -> list[GatewayRefund]:
        """Every refund the provider made on `day` (in TIME_ZONE). May raise GatewayUnavailable."""
        raise NotImplementedError
