"""The errors refunds' services raise: the shared domain errors (`config/errors.py`) under
the names the refund workflow reads best with."""

from config.errors import ActionForbidden, IdempotencyConflict, NotFound
from config.errors import DomainError as RefundError
from config.errors import DomainValidationError as RefundValidationError
from config.errors import NotAllowed as RefundNotAllowed

__all__ = ["ActionForbidden", "IdempotencyConflict", "NotFound", "RefundError", "RefundNotAllowed", "RefundValidationError"]
