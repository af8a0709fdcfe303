"""Serializer building blocks shared by the channel API."""

from collections.abc import Mapping
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


class BoundValidator:
    """One instance of an input serializer, made once and reused to validate every body.

    Making a serializer deep-copies each declared field, and with it the field's validators
    and lazily translated messages: on the intake POST that was 0.5-0.6 ms of 3.1 ms of
    CPU (`bench/api_ab.py`, variant `new-serializer`). Validating keeps no state on the serializer
    or its fields (no context, no instance, no partial), so one instance, bound at import,
    serves every request and thread. `validate(data)` returns what `is_valid(raise_exception=True)`
    then `validated_data` give, and raises the same per-field errors; a body that is not a
    JSON object goes through a new serializer, which shapes that error its own way."""

    def __init__(self, serializer_class: type[serializers.Serializer]):
        self.serializer_class = serializer_class
        self._serializer = serializer_class()
        self._serializer.fields  # noqa: B018 - bind the fields now, not in two threads' first requests at once

    def validate(self, data):
        if isinstance(data, Mapping):
            return self._serializer.run_validation(data)
        serializer = self.serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data
