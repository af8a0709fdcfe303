"""The intake's one way of writing a request, and the answer the POST gives.

Every database runs the same path: lock the order and its lines, `holds.take` decides what
may be refunded (or refuses, saying why), the hand-written statements of `refunds.intake`
hold and insert, and the evaluation is queued after commit.
(`tests/refunds/test_intake_property.py` checks the decisions against a plain ORM reference.)
"""

from decimal import Decimal

import pytest
from django.db import transaction
from django.test import RequestFactory
from django.utils.module_loading import import_string
from django_q.models import OrmQ

from config.actors import Actor
from orders.models import Order, OrderLine
from refunds import selectors_api, services
from refunds.api.serializers import RefundDetailSerializer, submitted_representation
from refunds.errors import IdempotencyConflict, NotFound, RefundValidationError
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
    refund, created = _submit(channel, order, "k-1", [("SKU-2", 1), ("SKU-1", 2)], note="too small")
    assert created
    request = RequestFactory().post("/api/v1/refunds/")
    fast = submitted_representation(refund, request)

    # What GET /api/v1/refunds/{id}/ answers, read back the way it reads it.
    again = selectors_api.refund_for_channel(channel=channel, refund_id=refund.pk)
    assert fast == RefundDetailSerializer(again, context={"request": request}).data
    assert fast["amount_requested"] == "25.55" and [line["amount"] for line in fast["lines"]] == ["5.55", "20.00"]
    assert fast["timeline"] == [{"action": "submit", "state": "submitted", "at": fast["created_at"], "note": "too small"}]


def _fields(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


def test_the_request_returned_is_the_row_written(channel):
    """The request is written by a hand-written INSERT (`intake.insert`), not `save()`: the
    instance returned must agree with the row, and be as usable as a loaded one (its
    relations set, nothing deferred)."""
    order = OrderFactory(channel=channel, lines=[("SKU-1", 3, "10.00"), ("SKU-2", 1, "5.55")])
    refund, created = _submit(channel, order, "k-1", [("SKU-2", 1)], note="too small")
    assert created and refund.pk is not None and not refund._state.adding
    stored = RefundRequest.objects.get(pk=refund.pk)
    assert _fields(refund) == _fields(stored)
    assert refund.get_deferred_fields() == set()
    assert (refund.state, refund.amount_paid, refund.evidence, refund.rule_trace) == ("submitted", Decimal("0.00"), {}, [])
    # Mutable defaults are the instance's own, not shared with the next request's.
    refund.evidence["seen"] = True
    other, _ = _submit(channel, order, "k-2", [("SKU-1", 1)])
    assert other.evidence == {} and RefundRequest.objects.get(pk=other.pk).evidence == {}
    event = refund.events.all()[0]
    assert _fields(event) == _fields(RefundEvent.objects.get(pk=event.pk))
    assert (event.request_id, event.action, event.to_state, event.note) == (refund.pk, "submit", "submitted", "too small")
    assert refund.channel == channel and refund.order.number == order.number


@pytest.mark.parametrize(
    ("lines", "asks", "amounts"),
    [
        # 10.00 over 3 units: a third rounds to 3.33, and the last unit takes the 3.34 left.
        ([("SKU-1", 3, "10.00")], [[("SKU-1", 1)], [("SKU-1", 1)], [("SKU-1", 1)]], ["3.33", "3.33", "3.34"]),
        # 0.05 over 2 units: half a cent rounds up, the other unit gets what is left.
        ([("SKU-1", 2, "0.05")], [[("SKU-1", 1)], [("SKU-1", 1)]], ["0.03", "0.02"]),
        # Two lines at once (all of SKU-2, two thirds of SKU-1 rounded up), then the unit left.
        ([("SKU-1", 3, "10.00"), ("SKU-2", 2, "5.55")], [[("SKU-2", 2), ("SKU-1", 2)], [("SKU-1", 1)]], ["12.22", "3.33"]),
    ],
)
def test_amounts_follow_the_rounding_rule_to_the_cent(channel, lines, asks, amounts):
    """`holds.take` works the amounts out to the cent; what is held is exactly that."""
    order = OrderFactory(channel=channel, lines=[(sku, qty, Decimal(total) / qty) for sku, qty, total in lines])
    for sku, _, total in lines:
        OrderLine.objects.filter(order=order, sku=sku).update(line_total=Decimal(total))
    Order.objects.filter(pk=order.pk).update(paid_total=sum(Decimal(total) for _, _, total in lines))
    got = [str(_submit(channel, order, f"k-{i}", ask)[0].amount_requested) for i, ask in enumerate(asks)]
    assert got == amounts
    assert [str(line.held_amount) for line in OrderLine.objects.filter(order=order).order_by("pk")] == [
        total for _, _, total in lines
    ], "everything is held, not a cent more or less"
    assert Order.objects.get(pk=order.pk).held_total == sum(Decimal(total) for _, _, total in lines)


@pytest.mark.parametrize(
    ("ask", "error"),
    [
        ([("SKU-9", 1)], {"lines": ["line 1: SKU 'SKU-9' is not on this order."]}),
        ([("SKU-1", 4)], {"lines": ["line 1: 4 of 'SKU-1' asked, only 3 left to refund."]}),
        ([("SKU-1", 1), ("SKU-1", 1)], {"lines": ["line 2: SKU 'SKU-1' is named twice."]}),
        ([("SKU-1", 0)], {"lines": ["line 1: quantity must be at least 1."]}),
    ],
)
def test_a_refused_request_writes_nothing_and_says_why(channel, ask, error):
    order = OrderFactory(channel=channel, lines=[("SKU-1", 3, "10.00")])
    before = _written()
    with pytest.raises(RefundValidationError) as refused:
        _submit(channel, order, "k-1", ask)
    assert refused.value.errors == error
    assert _written() == before


def test_more_than_the_order_has_left_is_refused_whole(channel):
    """The lines have units left but the order's money is held elsewhere: the order's check
    refuses, and nothing of the request is held on any line."""
    order = OrderFactory(channel=channel, lines=[("SKU-1", 2, "10.00")])
    Order.objects.filter(pk=order.pk).update(paid_total=Decimal("15.00"))
    before = _written()
    with pytest.raises(RefundValidationError) as refused:
        _submit(channel, order, "k-1", [("SKU-1", 2)])
    assert refused.value.errors == {"lines": ["20.00 is more than is left to refund on the order (15.00)."]}
    assert _written() == before


def test_replays_conflicts_and_unknown_orders(channel):
    order = OrderFactory(channel=channel, lines=[("SKU-1", 1, "10.00")])
    first, created = _submit(channel, order, "k-1", [("SKU-1", 1)])
    assert created
    before = _written()
    again, created = _submit(channel, order, "k-1", [("SKU-1", 1)])
    assert (again.pk, created) == (first.pk, False)
    with pytest.raises(IdempotencyConflict):
        services.refund_submit(
            actor=Actor.for_channel(channel),
            channel=channel,
            idempotency_key="k-1",
            order_number=order.number,
            kind="refund_only",
            reason="damaged",
            lines=[services.LineRequest("SKU-1", 1)],
            body_fingerprint="another body",
        )
    order.number = "NO-SUCH-ORDER"
    with pytest.raises(NotFound):
        _submit(channel, order, "k-2", [("SKU-1", 1)])
    assert _written() == before


@pytest.fixture
def queue(monkeypatch):
    """Tasks go to the ORM broker's table as a cluster would find them, not run inline.
    Returns a function listing the queued tasks as (queue key, func, args)."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(Conf, "ORM", "default")
    return lambda: [(row.key, row.task["func"], row.task["args"]) for row in OrmQ.objects.order_by("pk")]


def test_the_evaluation_task_is_queued_after_commit(channel, queue, django_capture_on_commit_callbacks):
    """Nothing of django-q2's is written inside the intake: one task is handed to the broker
    after commit (through config.q2), and running it evaluates this request."""
    from django_q.conf import Conf

    order = OrderFactory(channel=channel, lines=[("SKU-1", 1, "10.00")])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        refund, created = _submit(channel, order, "k-1", [("SKU-1", 1)])
    assert created and len(callbacks) == 1
    assert queue() == [], "nothing is queued before commit"
    callbacks[0]()
    [(key, func, args)] = queue()
    assert key == Conf.CLUSTER_NAME
    assert (func, args) == ("refunds.tasks.refund_evaluate_task", (refund.pk,))
    assert RefundRequest.objects.get(pk=refund.pk).state == RefundRequest.State.SUBMITTED
    import_string(func)(*args)
    assert RefundRequest.objects.get(pk=refund.pk).state == RefundRequest.State.READY_FOR_PAYOUT


def test_nothing_is_queued_for_a_refusal_a_replay_or_a_rolled_back_caller(channel, queue, django_capture_on_commit_callbacks):
    order = OrderFactory(channel=channel, lines=[("SKU-1", 2, "10.00")])
    with pytest.raises(RefundValidationError):
        _submit(channel, order, "k-1", [("SKU-1", 3)])
    assert queue() == []
    # Support creates requests inside its own transaction: if that rolls back, so does the task.
    with pytest.raises(RuntimeError), transaction.atomic():
        _submit(channel, order, "k-2", [("SKU-1", 1)])
        raise RuntimeError
    assert queue() == [] and RefundRequest.objects.count() == 0
    with django_capture_on_commit_callbacks(execute=True):
        _submit(channel, order, "k-3", [("SKU-1", 1)])
    assert len(queue()) == 1
    _, created = _submit(channel, order, "k-3", [("SKU-1", 1)])
    assert not created and len(queue()) == 1


def test_the_service_names_each_unknown_code(channel):
    """Staff call the service without the API's serializer: it checks the codes itself."""
    order = OrderFactory(channel=channel, lines=[("SKU-1", 1, "10.00")])
    before = _written()
    with pytest.raises(RefundValidationError) as refused:
        services.refund_submit(
            actor=Actor.for_channel(channel),
            channel=channel,
            idempotency_key="k-1",
            order_number=order.number,
            kind="swap",
            reason="bored",
            refund_method="cash",
        )
    assert sorted(refused.value.errors) == ["kind", "reason", "refund_method"]
    assert refused.value.errors["reason"][0].startswith("'bored' is not a reason code; use one of not_received, shipping_delay, ")
    assert _written() == before


def test_a_save_signal_on_a_model_intake_inserts_stops_it_with_a_sentence(channel):
    """The INSERTs are hand-written and skip `save()`: a receiver added later would silently
    not run, so intake refuses to start (a real check, not an assert) and writes nothing."""
    from django.core.exceptions import ImproperlyConfigured
    from django.db.models.signals import post_save

    order = OrderFactory(channel=channel, lines=[("SKU-1", 1, "10.00")])
    before = _written()

    def receiver(**kwargs):
        pass

    post_save.connect(receiver, sender=RefundLine)
    try:
        with pytest.raises(ImproperlyConfigured, match="RefundLine has pre_save/post_save receivers"):
            _submit(channel, order, "k-1", [("SKU-1", 1)])
    finally:
        post_save.disconnect(receiver, sender=RefundLine)
    assert _written() == before
