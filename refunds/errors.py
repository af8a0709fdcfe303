"""Domain errors raised by refunds.services. Each carries a sentence a person can read."""


class RefundError(Exception):
    """Base class: the operation was refused and nothing changed."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class RefundNotAllowed(RefundError):
    """The request's (or payout's) state does not allow this step."""


class ActionForbidden(RefundError):
    """The actor's role may not do this."""


class RefundValidationError(RefundError):
    """The input is wrong; `errors` maps each field to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


class IdempotencyConflict(RefundError):
    """The idempotency key was used before with a different body."""


class NotFound(RefundError):
    """No such object for this actor."""
