from django.utils.translation import gettext as _
from rest_framework import serializers

from orders.api.fields import MAX_QUANTITY, StrictSerializer, money
from orders.models import CustomerMessage, Order, OrderLine, TrackingStatus, column_max

# What a line and an order may come to, read from the columns that store them. Past a line's
# `line_total` the database refuses the insert (the client saw a 500); lines that together
# pass what an order can be paid (`paid_total`) or a request hold (`held_total`) could never
# be refunded whole, so they are refused here too rather than at the first refund.
LINE_TOTAL_MAX = column_max(OrderLine, "line_total")
LINES_TOTAL_MAX = column_max(Order, "paid_total")


class CustomerInSerializer(StrictSerializer):
    external_id = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True)
    email = serializers.EmailField(required=False, allow_blank=True)


class AddressInSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True)
    line1 = serializers.CharField(max_length=300)
    city = serializers.CharField(max_length=100, required=False, allow_blank=True)
    postcode = serializers.CharField(max_length=20, required=False, allow_blank=True)
    country = serializers.RegexField(r"^[A-Z]{2}$", required=False)


class LineInSerializer(StrictSerializer):
    sku = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)
    unit_price = money()

    def validate(self, attrs):
        quantity, unit_price = attrs["quantity"], attrs["unit_price"]
        total = OrderLine.total_of(unit_price=unit_price, quantity=quantity)
        if total > LINE_TOTAL_MAX:
            message = _("%(quantity)d × %(unit_price)s comes to %(total)s, more than one line may (%(max)s).") % {
                "quantity": quantity,
                "unit_price": unit_price,
                "total": total,
                "max": LINE_TOTAL_MAX,
            }
            raise serializers.ValidationError({"unit_price": [message]})
        return attrs


class PaymentInSerializer(StrictSerializer):
    method = serializers.CharField(max_length=30)
    reference = serializers.CharField(max_length=100)
    amount = money()
    paid_at = serializers.DateTimeField(required=False, allow_null=True)


class ShipmentInSerializer(StrictSerializer):
    carrier = serializers.CharField(max_length=30)
    tracking_number = serializers.CharField(max_length=64)
    shipped_at = serializers.DateTimeField(required=False, allow_null=True)
    delivered_at = serializers.DateTimeField(required=False, allow_null=True)


class OrderUpsertSerializer(StrictSerializer):
    placed_at = serializers.DateTimeField()
    currency = serializers.RegexField(r"^[A-Z]{3}$")
    customer = CustomerInSerializer()
    shipping_address = AddressInSerializer(required=False, allow_null=True)
    lines = LineInSerializer(many=True, allow_empty=False, max_length=500)
    shipping_fee = money(required=False)
    payment = PaymentInSerializer(required=False, allow_null=True)
    shipments = ShipmentInSerializer(many=True, required=False, max_length=50)

    def validate_lines(self, lines):
        skus = [line["sku"] for line in lines]
        if len(skus) != len(set(skus)):
            raise serializers.ValidationError("Each SKU may appear only once.")
        total = sum(OrderLine.total_of(unit_price=line["unit_price"], quantity=line["quantity"]) for line in lines)
        if total > LINES_TOTAL_MAX:
            message = _("The lines come to %(total)s, more than one order's lines may (%(max)s).")
            raise serializers.ValidationError(message % {"total": total, "max": LINES_TOTAL_MAX})
        return lines

    def validate_shipments(self, shipments):
        keys = [(s["carrier"], s["tracking_number"]) for s in shipments]
        if len(keys) != len(set(keys)):
            raise serializers.ValidationError("Each tracking number may appear only once.")
        return shipments


class OrderLineOutSerializer(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price = money()
    line_total = money()
    refunded_quantity = serializers.IntegerField()
    refunded_amount = money()


class ShipmentOutSerializer(serializers.Serializer):
    carrier = serializers.CharField()
    tracking_number = serializers.CharField()
    shipped_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    last_status = serializers.CharField()


class OrderOutSerializer(serializers.Serializer):
    number = serializers.CharField()
    state = serializers.CharField()
    refund_status = serializers.CharField()
    currency = serializers.CharField()
    placed_at = serializers.DateTimeField()
    customer_external_id = serializers.CharField(source="customer.external_id")
    shipping_fee = money()
    paid_total = money()
    refunded_total = money()
    refundable_total = money()
    lines = OrderLineOutSerializer(many=True)
    shipments = ShipmentOutSerializer(many=True)


class MessageInSerializer(StrictSerializer):
    direction = serializers.ChoiceField(choices=CustomerMessage.Direction.choices)
    body = serializers.CharField(max_length=10_000)
    sent_at = serializers.DateTimeField(required=False)


class MessageOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    direction = serializers.CharField()
    body = serializers.CharField()
    sent_at = serializers.DateTimeField()


class TrackingEventInSerializer(StrictSerializer):
    carrier = serializers.CharField(max_length=30)
    tracking_number = serializers.CharField(max_length=64)
    status = serializers.ChoiceField(choices=TrackingStatus.choices)
    occurred_at = serializers.DateTimeField()
    location = serializers.CharField(max_length=200, required=False, allow_blank=True)


class TrackingEventOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    carrier = serializers.CharField()
    tracking_number = serializers.CharField()
    status = serializers.CharField()
    occurred_at = serializers.DateTimeField()
    matched = serializers.SerializerMethodField()

    def get_matched(self, event) -> bool:
        return bool(event.shipment_id or event.return_parcel_id)
