"""Channel API for orders and the carrier tracking webhook. Each view makes one service call."""

import hashlib
import hmac
import re
import time

from django.conf import settings
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.exceptions import AuthenticationFailed, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from config.actors import Actor
from config.errors import NotFound
from orders import selectors, services
from orders.api import parsers
from orders.api.exceptions import ERR_400, ERR_401, ERR_404, ERR_429, ChannelAPIMixin
from orders.api.serializers import (
    MessageInSerializer,
    MessageOutSerializer,
    OrderOutSerializer,
    OrderUpsertSerializer,
    TrackingEventInSerializer,
    TrackingEventOutSerializer,
)
from orders.api.throttling import FailedAuthLimit
from orders.models import Carrier
from refunds import services as refund_services

ORDER_NUMBER = OpenApiParameter(
    "order_number", OpenApiTypes.STR, OpenApiParameter.PATH, description="The channel's order number."
)


def _check_number(number: str) -> None:
    if len(number) > 64 or "\x00" in number:
        raise ValidationError({"order_number": ["At most 64 characters, no NUL."]})


@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE"])
@authentication_classes([])
@permission_classes([AllowAny])
def not_found(request, rest: str = ""):
    """Unknown paths under the API answer JSON too, never Django's HTML page."""
    return Response({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)


class OrderView(ChannelAPIMixin, APIView):
    @extend_schema(
        operation_id="orders_retrieve",
        parameters=[ORDER_NUMBER],
        responses={200: OrderOutSerializer, 401: ERR_401, 404: ERR_404},
        summary="The order with its state and refund status.",
    )
    def get(self, request, order_number: str):
        order = selectors.order_for_channel(channel=request.auth, number=order_number)
        if order is None:
            raise NotFound(f"Order {order_number} does not exist.")
        return Response(OrderOutSerializer(order).data)

    @extend_schema(
        operation_id="orders_upsert",
        parameters=[ORDER_NUMBER],
        request=OrderUpsertSerializer,
        responses={200: OrderOutSerializer, 201: OrderOutSerializer, 400: ERR_400, 401: ERR_401},
        summary="Create or update an order (upsert). A changed shipping address is recorded.",
    )
    def put(self, request, order_number: str):
        _check_number(order_number)
        serializer = OrderUpsertSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        channel = request.auth
        _, created = services.order_upsert(
            channel=channel, actor=Actor.for_channel(channel), number=order_number, data=serializer.validated_data
        )
        order = selectors.order_for_channel(channel=channel, number=order_number)
        return Response(OrderOutSerializer(order).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class OrderMessagesView(ChannelAPIMixin, APIView):
    @extend_schema(
        operation_id="orders_messages_create",
        parameters=[ORDER_NUMBER],
        request=MessageInSerializer,
        responses={201: MessageOutSerializer, 400: ERR_400, 401: ERR_401, 404: ERR_404},
        summary="Record a message of the customer's conversation with the channel.",
    )
    def post(self, request, order_number: str):
        serializer = MessageInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        message = services.customer_message_record(channel=request.auth, order_number=order_number, **serializer.validated_data)
        return Response(MessageOutSerializer(message).data, status=status.HTTP_201_CREATED)


_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def signed_payload(timestamp: str, raw: bytes) -> bytes:
    """What a carrier signs: its X-Timestamp, a dot, and the raw body."""
    return timestamp.encode() + b"." + raw


class TrackingEventView(ChannelAPIMixin, APIView):
    """Carriers post scans here. `X-Timestamp` is when the request is sent (Unix seconds) and
    `X-Signature` the hex HMAC-SHA256, with the carrier's secret, of `<X-Timestamp>.<raw body>`.
    A timestamp further than CARRIER_SIGNATURE_TOLERANCE_SECONDS from our clock is refused, so
    a request captured on the way can't be replayed later."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="tracking_events_create",
        request=TrackingEventInSerializer,
        parameters=[
            OpenApiParameter(
                "X-Timestamp",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=True,
                description="When the request is sent, in Unix seconds; at most CARRIER_SIGNATURE_TOLERANCE_SECONDS "
                "(300 by default) from our clock, older or newer.",
            ),
            OpenApiParameter(
                "X-Signature",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=True,
                description="hex HMAC-SHA256, with the carrier's secret, of `<X-Timestamp>.<raw body>`",
            ),
        ],
        responses={
            200: OpenApiResponse(TrackingEventOutSerializer, description="A replay: the event was already recorded."),
            201: TrackingEventOutSerializer,
            400: ERR_400,
            401: OpenApiResponse(ERR_401.response, description="A missing or bad signature, or a timestamp out of tolerance."),
            429: ERR_429,
        },
        auth=[],
        summary="A carrier's tracking scan (signed).",
    )
    def post(self, request):
        # The signature covers the raw bytes, so read them before anything parses the body.
        raw = request.body
        limit = FailedAuthLimit()
        limit.check(request)
        try:
            carrier, body = self._verified_carrier(
                raw, request.headers.get("X-Signature", ""), request.headers.get("X-Timestamp", "")
            )
        except AuthenticationFailed:
            limit.failed(request)
            raise
        self._check_fresh(request.headers.get("X-Timestamp", ""))
        serializer = TrackingEventInSerializer(data=body)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if data["carrier"] != carrier.code:
            raise ValidationError({"carrier": ["Does not match the signing carrier."]})
        event, created = refund_services.carrier_scan_record(
            carrier=carrier,
            tracking_number=data["tracking_number"],
            status=data["status"],
            occurred_at=data["occurred_at"],
            location=data.get("location", ""),
        )
        event.refresh_from_db(fields=["shipment", "return_parcel"])
        return Response(TrackingEventOutSerializer(event).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @staticmethod
    def _verified_carrier(raw: bytes, signature: str, timestamp: str) -> tuple[Carrier, object]:
        """The signing carrier and the parsed body. The body names the carrier, so it is parsed
        before the signature is checked: one nested too deeply is a 400 (JSONTooDeep) then,
        like on every other endpoint; any other unreadable body is a bad signature."""
        bad = AuthenticationFailed(_("Missing or bad X-Signature or X-Timestamp."))
        if not _TIMESTAMP.fullmatch(timestamp):
            raise bad
        try:
            body = parsers.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise bad from None
        code = body.get("carrier") if isinstance(body, dict) else None
        if not isinstance(code, str) or not signature:
            raise bad
        carrier = Carrier.objects.filter(code=code[:30]).first()
        if carrier is None:
            raise bad
        expected = hmac.new(carrier.secret.encode(), signed_payload(timestamp, raw), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode("utf-8", "replace")):
            raise bad
        return carrier, body

    @staticmethod
    def _check_fresh(timestamp: str) -> None:
        """Checked after the signature, so only the carrier itself learns that its clock is off."""
        tolerance = settings.CARRIER_SIGNATURE_TOLERANCE_SECONDS
        skew = int(time.time()) - int(timestamp)
        if abs(skew) > tolerance:
            raise AuthenticationFailed(
                _(
                    "X-Timestamp is %(skew)d seconds from our clock; at most %(tolerance)d are accepted, older or newer. "
                    "Sign the event again with the time you send it."
                )
                % {"skew": skew, "tolerance": tolerance}
            )

    def get_authenticate_header(self, request):
        return 'HMAC-SHA256 header="X-Signature"'
