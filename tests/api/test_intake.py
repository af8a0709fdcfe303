"""The intake's two ways of writing a request, and the answer the POST gives.

On PostgreSQL a request is read without locks and written by one statement that proves,
under the locks, that the lines are still as read (`refunds.intake.write_checked`); when
they are not, nothing is written and the service takes the locked path, which decides on
the lines as they are now. Elsewhere the locked path is the only one.
"""

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.test import RequestFactory

from orders.actors import Actor
from orders.models import Order, OrderLine
from refunds import intake, services
from refunds.api.serializers import RefundDetailSerializer, submitted_representation
from refunds.errors import RefundValidationError
from refunds.models import RefundEvent, RefundLine, RefundRequest
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


def _submit(channel, order, key, lines, note=""):
    return services.refund_submit(
        actor=Actor.for_channel(channel),
        channel=channel,
        idempotency_key=key,
        order_number=order.number,
        kind=RefundRequest.Kind.REFUND_ONLY,
        reason="size_fit",
        lines=[services.LineRequest(sku, qty) for sku, qty in lines],
        customer_note=note,
        body_fingerprint=key,
    )


def _written():
    return (
        RefundRequest.objects.count(),
        RefundLine.objects.count(),
        RefundEvent.objects.count(),
        sorted(OrderLine.objects.values_list("sku", "held_quantity", "held_amount")),
        list(Order.objects.values_list("held_total", flat=True)),
    )


def test_the_201_body_is_what_the_detail_serializer_says(channel):
    order = OrderFactory(channel=channel, lines=[("SKU-1", 3, "10.00"), ("SKU-2", 1, "5.55")])
    refund, created = _submit(channel, order, "k-1", [("SKU-1", 2), ("SKU-2", 1)], note="too small")
    assert created
    request = RequestFactory().post("/api/v1/refunds/")
    fast = submitted_representation(refund, request)

    again = RefundRequest.objects.select_related("order").prefetch_related("lines__order_line").get(pk=refund.pk)
    again.public_events = [e for e in again.events.all() if e.public]
    assert fast == RefundDetailSerializer(again, context={"request": request}).data
    assert fast["amount_requested"] == "25.55" and [line["amount"] for line in fast["lines"]] == ["20.00", "5.55"]
    assert fast["timeline"] == [{"action": "submit", "state": "submitted", "at": fast["created_at"], "note": "too small"}]


@pytest.mark.postgres
def test_a_checked_write_of_lines_that_changed_since_the_read_writes_nothing(channel):
    order = OrderFactory(channel=channel, lines=[("SKU-1", 3, "10.00")])
    with connection.cursor() as cursor:
        stale_order, stale_lines, match = intake.read_unlocked(
            cursor, channel_id=channel.pk, number=order.number, key_channel_id=channel.pk, key="k-late"
        )
    assert match is None and stale_lines["SKU-1"].held_quantity == 0
    _submit(channel, order, "k-first", [("SKU-1", 1)])
    before = _written()

    line = stale_lines["SKU-1"]
    refund = RefundRequest(
        channel=channel,
        idempotency_key="k-late",
        order=stale_order,
        customer_id=stale_order.customer_id,
        kind="refund_only",
        requested_kind="refund_only",
        reason="size_fit",
        currency="CNY",
        amount_requested=Decimal("10.00"),
    )
    refund_line = RefundLine(request=refund, order_line=line, quantity=1, amount=Decimal("10.00"))
    event = RefundEvent(request=refund, action="submit", to_state="submitted", actor_kind="channel", public=True)
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        intake.write_checked(
            cursor,
            order=stale_order,
            moves=[(line, 1, Decimal("10.00"))],
            refund=refund,
            refund_lines=[refund_line],
            event=event,
        )
    assert _written() == before, "neither the holds nor any row of the refused request were written"


@pytest.mark.postgres
def test_a_request_whose_read_went_stale_is_decided_on_the_lines_as_they_are_now(channel, monkeypatch):
    """Another request takes a unit between this request's read and its write: the checked
    write refuses, and the locked path answers with what is left now, to the cent."""
    order = OrderFactory(channel=channel, lines=[("SKU-1", 3, "10.00")])
    line = OrderLine.objects.get(order=order)
    OrderLine.objects.filter(pk=line.pk).update(line_total=Decimal("10.00"))  # 3 units share 10.00
    Order.objects.filter(pk=order.pk).update(paid_total=Decimal("10.00"))
    real_read = intake.read_unlocked
    interleaved: list = []

    def read_then_someone_else_writes(cursor, **kwargs):
        answer = real_read(cursor, **kwargs)
        if kwargs["key"] == "k-late" and not interleaved:
            interleaved.append(_submit(channel, order, "k-meanwhile", [("SKU-1", 1)]))
        return answer

    monkeypatch.setattr(intake, "read_unlocked", read_then_someone_else_writes)
    with pytest.raises(RefundValidationError) as refused:
        _submit(channel, order, "k-late", [("SKU-1", 3)])
    assert refused.value.errors == {"lines": ["line 1: 3 of 'SKU-1' asked, only 2 left to refund."]}
    assert interleaved[0][0].amount_requested == Decimal("3.33")

    monkeypatch.setattr(intake, "read_unlocked", real_read)
    refund, created = _submit(channel, order, "k-late", [("SKU-1", 2)])
    assert created and refund.amount_requested == Decimal("6.67"), "the last units take what is left, not 2 x 3.33"
    assert OrderLine.objects.get(pk=line.pk).held_amount == Decimal("10.00")
    assert Order.objects.get(pk=order.pk).held_total == Decimal("10.00")


@pytest.mark.postgres
def test_the_same_key_arriving_between_read_and_write_is_a_replay(channel, monkeypatch):
    order = OrderFactory(channel=channel, lines=[("SKU-1", 1, "10.00")])
    real_read = intake.read_unlocked
    first = []

    def read_then_the_same_key_lands(cursor, **kwargs):
        answer = real_read(cursor, **kwargs)
        if not first:
            monkeypatch.setattr(intake, "read_unlocked", real_read)
            first.append(_submit(channel, order, "k-same", [("SKU-1", 1)]))
        return answer

    monkeypatch.setattr(intake, "read_unlocked", read_then_the_same_key_lands)
    refund, created = _submit(channel, order, "k-same", [("SKU-1", 1)])
    assert not created and refund.pk == first[0][0].pk
    assert RefundRequest.objects.count() == 1 and OrderLine.objects.get(order=order).held_quantity == 1
