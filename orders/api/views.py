"""Channel API for orders and the carrier tracking webhook. Each view makes one service call."""

import hashlib
import hmac

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
from orders.api.exceptions import ERR_400, ERR_401, ERR_404, ChannelAPIMixin
from orders.api.serializers import (
    MessageInSerializer,
    MessageOutSerializer,
    OrderOutSerializer,
    OrderUpsertSerializer,
    TrackingEventInSerializer,
    TrackingEventOutSerializer,
)
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


class TrackingEventView(ChannelAPIMixin, APIView):
    """Carriers post scans here, signed with HMAC-SHA256 of the raw body (`X-Signature`, hex)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="tracking_events_create",
        request=TrackingEventInSerializer,
        parameters=[
            OpenApiParameter(
                "X-Signature", OpenApiTypes.STR, OpenApiParameter.HEADER, required=True, description="hex HMAC-SHA256 of the body"
            )
        ],
        responses={
            200: OpenApiResponse(TrackingEventOutSerializer, description="A replay: the event was already recorded."),
            201: TrackingEventOutSerializer,
            400: ERR_400,
            401: ERR_401,
        },
        auth=[],
        summary="A carrier's tracking scan (signed).",
    )
    def post(self, request):
        # The signature covers the raw bytes, so read them before anything parses the body.
        raw = request.body
        carrier, body = self._verified_carrier(raw, request.headers.get("X-Signature", ""))
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
    def _verified_carrier(raw: bytes, signature: str) -> tuple[Carrier, object]:
        """The signing carrier and the parsed body. The body names the carrier, so it is parsed
        before the signature is checked: one nested too deeply is a 400 (JSONTooDeep) then,
        like on every other endpoint; any other unreadable body is a bad signature."""
        bad = AuthenticationFailed("Missing or bad X-Signature.")
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
        expected = hmac.new(carrier.secret.encode(), raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode("utf-8", "replace")):
            raise bad
        return carrier, body

    def get_authenticate_header(self, request):
        return 'HMAC-SHA256 header="X-Signature"'
