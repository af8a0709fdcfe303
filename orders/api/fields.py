"""Serializer building blocks shared by the channel API."""

from decimal import Decimal

from rest_framework import serializers

from orders.models import MONEY

MAX_QUANTITY = 1_000_000


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know: a typo in a field name must not be silently ignored."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class MoneyField(serializers.DecimalField):
    """A decimal string with two places; JSON numbers are refused, floats lose cents."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


MoneyField.default_error_messages = {
    **serializers.DecimalField.default_error_messages,
    "not_a_string": 'Send money as a decimal string, like "59.90".',
}


def money(**kwargs):
    return MoneyField(min_value=Decimal("0.00"), coerce_to_string=True, **MONEY, **kwargs)
