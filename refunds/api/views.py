"""Channel API for refund requests. Each view validates the body, makes one call into
`refunds.services`, and answers the request as the channel may see it."""

import hashlib
import json

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from config.actors import Actor
from orders.api.exceptions import ERR_400, ERR_401, ERR_403, ERR_404, ERR_409, ChannelAPIMixin
from orders.api.fields import BoundValidator
from refunds import selectors_api as selectors
from refunds import services
from refunds.api.serializers import (
    RefundCreateSerializer,
    RefundDetailSerializer,
    RefundMessageInSerializer,
    RefundOutSerializer,
    ReturnShipmentInSerializer,
    WithdrawInSerializer,
    submitted_representation,
)
from refunds.errors import NotFound
from refunds.models import RefundRequest

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    description="Any string up to 128 characters; the same key with the same body returns the same request.",
)
REFUND_ID = OpenApiParameter("refund_id", OpenApiTypes.INT, OpenApiParameter.PATH)
# Every channel's every request is validated here: the serializer is made once.
CREATE_BODY = BoundValidator(RefundCreateSerializer)


def body_fingerprint(data) -> str:
    """SHA-256 of the body as canonical JSON: key order and spacing don't make a new body."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _refund_id(value: str) -> int:
    """Path ids are matched as text so that a malformed one is a JSON 404, not Django's page."""
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise NotFound(f"Refund request {value[:40]} does not exist.")
    return int(value)


def _detail(request, refund_id: int) -> Response:
    refund = selectors.refund_for_channel(channel=request.auth, refund_id=refund_id)
    if refund is None:
        raise NotFound(f"Refund request {refund_id} does not exist.")
    return Response(RefundDetailSerializer(refund, context={"request": request}).data)


class Pagination(PageNumberPagination):
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"


class RefundListView(ChannelAPIMixin, APIView):
    pagination_class = Pagination

    @extend_schema(
        operation_id="refunds_list",
        parameters=[
            OpenApiParameter("order_number", OpenApiTypes.STR, OpenApiParameter.QUERY),
            OpenApiParameter("state", OpenApiTypes.STR, OpenApiParameter.QUERY, enum=RefundRequest.State.values),
            OpenApiParameter("page", OpenApiTypes.INT, OpenApiParameter.QUERY),
            OpenApiParameter("page_size", OpenApiTypes.INT, OpenApiParameter.QUERY),
        ],
        responses={200: RefundOutSerializer(many=True), 400: ERR_400, 401: ERR_401, 404: ERR_404},
        summary="The channel's own refund requests, newest first, paginated.",
    )
    def get(self, request):
        state = request.query_params.get("state") or None
        if state and state not in RefundRequest.State.values:
            raise ValidationError({"state": [f"Use one of {', '.join(RefundRequest.State.values)}."]})
        qs = selectors.refunds_for_channel(
            channel=request.auth, order_number=request.query_params.get("order_number") or None, state=state
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(RefundOutSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(
        operation_id="refunds_create",
        parameters=[IDEMPOTENCY_KEY],
        request=RefundCreateSerializer,
        responses={
            200: OpenApiResponse(RefundDetailSerializer, description="A replay of the same key and body: the same request."),
            201: RefundDetailSerializer,
            400: ERR_400,
            401: ERR_401,
            404: ERR_404,
            409: ERR_409,
        },
        summary="Ask for a refund (idempotent by Idempotency-Key).",
    )
    def post(self, request):
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key or len(key) > 128:
            raise ValidationError({"Idempotency-Key": ["Send an Idempotency-Key header of 1 to 128 characters."]})
        data = CREATE_BODY.validate(request.data)
        channel = request.auth
        lines = data.get("lines")
        refund, created = services.refund_submit(
            actor=Actor.for_channel(channel),
            channel=channel,
            idempotency_key=key,
            order_number=data["order_number"],
            kind=data["kind"],
            reason=data["reason"],
            lines=[services.LineRequest(sku=ln["sku"], quantity=ln["quantity"]) for ln in lines] if lines is not None else None,
            refund_method=data["refund_method"],
            customer_note=data["customer_note"],
            body_fingerprint=body_fingerprint(request.data),
        )
        if not created:
            return _detail(request, refund.pk)
        # A new request is answered from the objects the service just wrote (lines and the
        # submit event come loaded), not read back: it is `submitted` until the task decides.
        return Response(submitted_representation(refund, request), status=status.HTTP_201_CREATED)


class RefundDetailView(ChannelAPIMixin, APIView):
    @extend_schema(
        operation_id="refunds_retrieve",
        parameters=[REFUND_ID],
        responses={200: RefundDetailSerializer, 401: ERR_401, 404: ERR_404},
        summary="The request now: state, amounts, decision, return instructions, timeline.",
    )
    def get(self, request, refund_id: str):
        return _detail(request, _refund_id(refund_id))


def _action_view(name, service_call, *, in_serializer=None, summary=""):
    """One POST endpoint that runs one service and answers the request's new state."""

    class View(ChannelAPIMixin, APIView):
        @extend_schema(
            operation_id=f"refunds_{name}",
            parameters=[REFUND_ID],
            request=in_serializer,
            responses={200: RefundDetailSerializer, 400: ERR_400, 401: ERR_401, 403: ERR_403, 404: ERR_404, 409: ERR_409},
            summary=summary,
        )
        def post(self, request, refund_id: str):
            refund_id = _refund_id(refund_id)
            data = {}
            if in_serializer is not None:
                serializer = in_serializer(data=request.data)
                serializer.is_valid(raise_exception=True)
                data = serializer.validated_data
            elif request.data not in ({}, None, b"", ""):
                if not isinstance(request.data, dict) or request.data:
                    raise ValidationError({"non_field_errors": ["This endpoint takes no body."]})
            # Another channel's request is "not found", before any service sees it.
            if not RefundRequest.objects.filter(pk=refund_id, channel=request.auth).exists():
                raise NotFound(f"Refund request {refund_id} does not exist.")
            service_call(refund_id=refund_id, actor=Actor.for_channel(request.auth), **data)
            return _detail(request, refund_id)

    View.__name__ = View.__qualname__ = f"Refund{name.title().replace('_', '')}View"
    return View


RefundAcceptAlternativeView = _action_view(
    "alternative_accept", services.refund_accept_alternative, summary="The customer takes the alternative on offer."
)
RefundDeclineAlternativeView = _action_view(
    "alternative_decline", services.refund_decline_alternative, summary="The customer declines the alternative; support decides."
)
RefundWithdrawView = _action_view(
    "withdraw", services.refund_withdraw, in_serializer=WithdrawInSerializer, summary="The customer withdraws the request."
)
RefundReturnShipmentView = _action_view(
    "return_shipment",
    services.return_ship,
    in_serializer=ReturnShipmentInSerializer,
    summary="The customer's return parcel (carrier and tracking number).",
)


def _resume(*, refund_id, actor, body):
    return services.refund_resume(refund_id=refund_id, actor=actor, message=body)


RefundMessageView = _action_view(
    "messages", _resume, in_serializer=RefundMessageInSerializer, summary="The customer's answer when support asked for more."
)
