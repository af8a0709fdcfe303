from django.urls import reverse
from rest_framework import serializers

from orders.api.fields import MAX_QUANTITY, StrictSerializer, money
from refunds.models import Reason, RefundMethod, RefundRequest

# Rules whose sentences are for staff only: telling a customer about their risk score or the
# watch list would teach an abuser what to avoid.
_INTERNAL_RULES = {"risk_score", "watchlist", "refunds_per_order"}
# Event notes a customer may read in the timeline (others can hold internal reasons).
_PUBLIC_NOTES = {"submit", "reject_automatically", "reject", "ask_customer", "offer_alternative", "return_shipped"}


class RefundLineInSerializer(StrictSerializer):
    sku = serializers.CharField(max_length=64)
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)


class RefundCreateSerializer(StrictSerializer):
    order_number = serializers.CharField(max_length=64)
    kind = serializers.ChoiceField(choices=RefundRequest.Kind.choices)
    reason = serializers.ChoiceField(choices=Reason.choices)
    lines = RefundLineInSerializer(many=True, required=False, allow_empty=False, max_length=500)
    refund_method = serializers.ChoiceField(choices=RefundMethod.choices, default=RefundMethod.ORIGINAL_PAYMENT)
    customer_note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class RefundLineOutSerializer(serializers.Serializer):
    sku = serializers.CharField(source="order_line.sku")
    name = serializers.CharField(source="order_line.name")
    quantity = serializers.IntegerField()
    amount = money()


class RefundOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    state = serializers.CharField()
    order_number = serializers.CharField(source="order.number")
    kind = serializers.CharField()
    reason = serializers.CharField()
    lines = RefundLineOutSerializer(many=True)
    amount_requested = money()
    amount_approved = money(allow_null=True)
    amount_paid = money()
    currency = serializers.CharField()
    refund_method = serializers.CharField()
    created_at = serializers.DateTimeField()
    url = serializers.SerializerMethodField()

    def get_url(self, refund) -> str:
        path = reverse("api-refund", args=[refund.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class DecisionSerializer(serializers.Serializer):
    decided_by = serializers.CharField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)
    alternative = serializers.DictField(allow_null=True)


class ReturnInstructionsSerializer(serializers.Serializer):
    return_code = serializers.CharField()
    address = serializers.CharField()
    deadline = serializers.DateTimeField()
    carrier = serializers.CharField(allow_blank=True)
    tracking_number = serializers.CharField(allow_blank=True)


class TimelineEntrySerializer(serializers.Serializer):
    action = serializers.CharField()
    state = serializers.CharField(source="to_state")
    at = serializers.DateTimeField()
    note = serializers.SerializerMethodField()

    def get_note(self, event) -> str:
        return event.note if event.action in _PUBLIC_NOTES else ""


class RefundDetailSerializer(RefundOutSerializer):
    decision = serializers.SerializerMethodField()
    return_instructions = serializers.SerializerMethodField()
    timeline = TimelineEntrySerializer(many=True, source="public_events")

    def get_decision(self, refund) -> DecisionSerializer(allow_null=True):
        if refund.state == RefundRequest.State.SUBMITTED:
            return None
        if refund.decided_by or refund.decision_reason:
            reason = refund.decision_reason or "all rules passed"
            by = refund.decided_by or "system"
        elif refund.escalation_reason:
            shown = [
                s["sentence"]
                for s in refund.rule_trace
                if s.get("outcome") == "escalate" and s.get("rule") not in _INTERNAL_RULES
            ]
            reason = "a person will review this request" + (f": {'; '.join(shown)}" if shown else "")
            by = None
        else:
            reason, by = "", "system" if refund.evaluated_at else None
        if refund.state == RefundRequest.State.AWAITING_CUSTOMER and refund.alternative:
            reason = reason or refund.alternative.get("description", "")
        return {"decided_by": by, "reason": reason, "alternative": refund.alternative or None}

    def get_return_instructions(self, refund) -> ReturnInstructionsSerializer(allow_null=True):
        due = (RefundRequest.State.AWAITING_RETURN, RefundRequest.State.RETURN_IN_TRANSIT)
        parcel = getattr(refund, "return_parcel", None) if refund.state in due else None
        if parcel is None:
            return None
        return ReturnInstructionsSerializer(parcel).data


class ReturnShipmentInSerializer(StrictSerializer):
    carrier = serializers.CharField(max_length=30)
    tracking_number = serializers.CharField(max_length=64)


class RefundMessageInSerializer(StrictSerializer):
    body = serializers.CharField(max_length=10_000)


class WithdrawInSerializer(StrictSerializer):
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


# One unbound field of each kind formats values the way the serializers above do; a field's
# `to_representation` needs no parent.
_AT = serializers.DateTimeField()
_MONEY = money()


def submitted_representation(refund: RefundRequest, request) -> dict:
    """`RefundDetailSerializer(refund).data` for a request the intake has just written: still
    `submitted`, so no decision and no return instructions yet, its lines and its `submit`
    event loaded. Built directly, it costs the POST a tenth of what instantiating the nested
    serializers does (`bench/api_inprocess.py`); tests/api holds the two equal."""
    return {
        "id": refund.pk,
        "number": refund.number,
        "state": str(refund.state),
        "order_number": refund.order.number,
        "kind": refund.kind,
        "reason": refund.reason,
        "lines": [
            {
                "sku": line.order_line.sku,
                "name": line.order_line.name,
                "quantity": line.quantity,
                "amount": _MONEY.to_representation(line.amount),
            }
            for line in refund.lines.all()
        ],
        "amount_requested": _MONEY.to_representation(refund.amount_requested),
        "amount_approved": None if refund.amount_approved is None else _MONEY.to_representation(refund.amount_approved),
        "amount_paid": _MONEY.to_representation(refund.amount_paid),
        "currency": refund.currency,
        "refund_method": refund.refund_method,
        "created_at": _AT.to_representation(refund.created_at),
        "url": request.build_absolute_uri(reverse("api-refund", args=[refund.pk])),
        "decision": None,
        "return_instructions": None,
        "timeline": [
            {
                "action": event.action,
                "state": event.to_state,
                "at": _AT.to_representation(event.at),
                "note": event.note if event.action in _PUBLIC_NOTES else "",
            }
            for event in refund.events.all()
            if event.public
        ],
    }
