"""The domain errors every app's services raise. Each carries a sentence a person can read.

A service refuses by raising one of these and changes nothing; the API's exception handler
(`orders/api/exceptions.py`) and the admin turn them into a 4xx answer or a message. Each app
names them for its own domain beside its services (`refunds/errors.py`), so the handler
knows one family.
"""


class DomainError(Exception):
    """Base class: the operation was refused and nothing changed."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotAllowed(DomainError):
    """The object's state does not allow this step."""


class ActionForbidden(DomainError):
    """The actor's role may not do this."""


class DomainValidationError(DomainError):
    """The input is wrong; `errors` maps each field to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


class IdempotencyConflict(DomainError):
    """The idempotency key was used before with a different body."""


class NotFound(DomainError):
    """No such object for this actor."""
