"""One place that turns domain errors into HTTP answers, so every view stays a single call.

Every 4xx body is JSON: `{"field": ["message"]}` for validation, `{"detail": "..."}` else.
"""

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import exception_handler

from config.errors import ActionForbidden, DomainError, DomainValidationError, IdempotencyConflict, NotAllowed, NotFound
from orders.api.parsers import JSONParser
from orders.api.throttling import channel_throttled

log = logging.getLogger(__name__)

_STATUS = {
    NotFound: status.HTTP_404_NOT_FOUND,
    IdempotencyConflict: status.HTTP_409_CONFLICT,
    NotAllowed: status.HTTP_409_CONFLICT,
    ActionForbidden: status.HTTP_403_FORBIDDEN,
}


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "body_too_large"

    def __init__(self):
        super().__init__(
            _("The request body is larger than the %(limit)d bytes this API accepts.")
            % {"limit": settings.DATA_UPLOAD_MAX_MEMORY_SIZE}
        )


def api_exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        # Django refuses to read a body over DATA_UPLOAD_MAX_MEMORY_SIZE wherever it is first
        # read (DRF's parsers, the webhook's `request.body`); it is the client's, not a bug.
        exc = BodyTooLarge()
    if isinstance(exc, DomainValidationError):
        return Response(exc.errors, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DomainError):
        code = next((c for cls, c in _STATUS.items() if isinstance(exc, cls)), status.HTTP_400_BAD_REQUEST)
        return Response({"detail": exc.message}, status=code)
    if isinstance(exc, DjangoValidationError):
        return Response({"detail": " ".join(exc.messages)}, status=status.HTTP_400_BAD_REQUEST)
    response = exception_handler(exc, context)
    if response is not None:
        return response
    if isinstance(exc, Http404):  # pragma: no cover - handled by DRF above
        return Response({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
    # A bug, not the client's fault: log it, and still answer JSON rather than an HTML page.
    log.exception("unhandled error in %s", context.get("view").__class__.__name__)
    return Response({"detail": "Internal error."}, status=status.HTTP_500_INTERNAL_SERVER_ERROR)


class ChannelAPIMixin:
    """Views of the channel API take JSON only (nested at most `MAX_JSON_DEPTH` levels) and
    answer with the handler above."""

    parser_classes = [JSONParser]

    def get_exception_handler(self):
        return api_exception_handler

    def throttled(self, request, wait):
        raise channel_throttled(wait)


DetailSerializer = inline_serializer("ErrorDetail", {"detail": serializers.CharField()})

ERR_400 = OpenApiResponse(
    response={"type": "object", "additionalProperties": True},
    description='Validation failed: a message per field (`{"field": ["message"]}`), or `{"detail": ...}`.',
)
ERR_401 = OpenApiResponse(DetailSerializer, description="Missing or invalid credentials.")
ERR_403 = OpenApiResponse(DetailSerializer, description="This channel may not do this.")
ERR_404 = OpenApiResponse(DetailSerializer, description="No such object for this channel.")
ERR_409 = OpenApiResponse(DetailSerializer, description="The state does not allow this, or an idempotency conflict.")
ERR_429 = OpenApiResponse(
    DetailSerializer,
    description="Over a limit (see the API's description): wait the seconds in the `Retry-After` header.",
)
