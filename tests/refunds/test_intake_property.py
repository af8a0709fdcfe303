"""Intake agrees with a plain ORM reference, over random orders, lines and earlier requests.

The product admits a request in one way on every database: hand-written statements read and
write (`refunds.intake`), `refunds.services.holds.take` decides. Here the rule is written
again, as plainly as it can be, with the ORM and whole cents: what each line gives, what is
held, and every refusal with its sentence. Hypothesis draws an order (lines with some units
already refunded, money already paid back), then a run of requests against it — for named
lines (unknown SKUs, SKUs named twice, quantities from 0 to more than is left), for the
whole order, replays of an earlier key with the same body and with another — and each
answer of `refund_submit` must be the reference's, with the rows to match.
"""

from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.actors import Actor
from orders.models import Order, OrderLine
from refunds import services
from refunds.errors import IdempotencyConflict, RefundValidationError
from refunds.models import RefundLine, RefundRequest
from tests.factories import ChannelFactory, OrderFactory

pytestmark = pytest.mark.django_db


# --- the reference: the rule, written again with the ORM ----------------------------------


def cents(amount: Decimal) -> int:
    return int(amount * 100)


def money(n: int) -> Decimal:
    return Decimal(n).scaleb(-2)


@dataclass(frozen=True)
class Admitted:
    taken: list[tuple[str, int, int]]  # (sku, quantity, cents), in the order asked


@dataclass(frozen=True)
class Refused:
    errors: dict


def reference(order_id: int, asked: list[tuple[str, int]] | None) -> Admitted | Refused:
    """What may be refunded on the order as it is in the database now."""
    order = Order.objects.get(pk=order_id)
    lines = {line.sku: line for line in OrderLine.objects.filter(order_id=order_id).order_by("pk")}

    def units_left(line):
        return line.quantity - line.refunded_quantity - line.held_quantity

    def cents_left(line):
        return cents(line.line_total) - cents(line.refunded_amount) - cents(line.held_amount)

    def share(line, qty):
        # All that is left for the last units; otherwise the units' share of the line, half a
        # cent up, but never more than the line has left (sub-cent unit prices round up).
        if qty == units_left(line):
            return cents_left(line)
        num, den = cents(line.line_total) * qty, line.quantity
        return min((2 * num + den) // (2 * den), cents_left(line))

    nothing = Refused({"lines": ["Nothing is left to refund on this order."]})
    if asked is None:
        wanted = [(line, units_left(line)) for line in lines.values() if units_left(line) > 0]
        if not wanted:
            return nothing
    elif not asked:
        return Refused({"lines": ["Name at least one line, or leave lines out for the whole order."]})
    else:
        errors, wanted, seen = [], [], set()
        for i, (sku, qty) in enumerate(asked, start=1):
            line = lines.get(sku)
            if line is None:
                errors.append(f"line {i}: SKU '{sku}' is not on this order.")
            elif sku in seen:
                errors.append(f"line {i}: SKU '{sku}' is named twice.")
            elif qty < 1:
                errors.append(f"line {i}: quantity must be at least 1.")
            elif qty > units_left(line):
                errors.append(f"line {i}: {qty} of '{sku}' asked, only {units_left(line)} left to refund.")
            else:
                wanted.append((line, qty))
            seen.add(sku)
        if errors:
            return Refused({"lines": errors})
    taken = [(line.sku, qty, share(line, qty)) for line, qty in wanted]
    total = sum(c for _, _, c in taken)
    if total <= 0:
        return nothing
    left = order.paid_total - order.refunded_total - order.held_total
    if total > cents(left):
        return Refused({"lines": [f"{money(total)} is more than is left to refund on the order ({left})."]})
    return Admitted(taken)


# --- what hypothesis draws ----------------------------------------------------------------


@st.composite
def order_lines(draw):
    """(sku, quantity, line total in cents, units refunded, cents refunded) per line."""
    lines = []
    for i in range(draw(st.integers(1, 4))):
        qty = draw(st.integers(1, 5))
        total = draw(st.one_of(st.integers(1, 9), st.integers(10, 99_999)))  # sub-cent unit prices too
        refunded_qty = draw(st.integers(0, qty))
        if refunded_qty == qty:
            refunded = total
        else:
            refunded = draw(st.integers(0, total * refunded_qty // qty))
        lines.append((f"SKU-{i + 1}", qty, total, refunded_qty, refunded))
    return lines


def asks(skus):
    """One request's lines: None (the whole order), or (sku, quantity) pairs."""
    sku = st.sampled_from([*skus, "SKU-9"])
    return st.one_of(st.none(), st.lists(st.tuples(sku, st.integers(0, 6)), min_size=0, max_size=4))


@st.composite
def scenarios(draw):
    lines = draw(order_lines())
    # The order's paid total: the lines', or less (money already refunded outside the lines,
    # a discount), so that the order's own check refuses what the lines would allow.
    paid = sum(total for _, _, total, _, _ in lines)
    short = draw(st.one_of(st.just(0), st.integers(0, paid)))
    refunded_on_order = sum(refunded for *_, refunded in lines)
    steps = []
    for n in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["new", "new", "new", "replay", "conflict"])) if n else "new"
        if kind == "new":
            steps.append(("new", draw(asks([sku for sku, *_ in lines]))))
        else:
            steps.append((kind, draw(st.integers(0, n - 1))))
    return lines, max(paid - short, refunded_on_order), steps


# --- the property -------------------------------------------------------------------------


def _state(order_id: int):
    lines = OrderLine.objects.filter(order_id=order_id).order_by("pk")
    return (
        list(lines.values_list("sku", "held_quantity", "held_amount", "refunded_quantity", "refunded_amount")),
        Order.objects.values_list("held_total", "refunded_total").get(pk=order_id),
        RefundRequest.objects.filter(order_id=order_id).count(),
        RefundLine.objects.filter(request__order_id=order_id).count(),
    )


def _submit(channel, order, key: str, asked):
    return services.refund_submit(
        actor=Actor.for_channel(channel),
        channel=channel,
        idempotency_key=key,
        order_number=order.number,
        kind=RefundRequest.Kind.REFUND_ONLY,
        reason="size_fit",
        lines=None if asked is None else [services.LineRequest(sku, qty) for sku, qty in asked],
        body_fingerprint=repr(asked),
    )


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenarios())
def test_intake_agrees_with_the_orm_reference(scenario):
    lines, paid, steps = scenario
    with transaction.atomic():
        _check(lines, paid, steps)
        transaction.set_rollback(True)  # each example on a clean database


def _check(lines, paid, steps):
    channel = ChannelFactory()
    order = OrderFactory(channel=channel, lines=[(sku, qty, Decimal("0.01")) for sku, qty, *_ in lines])
    for sku, _, total, refunded_qty, refunded in lines:
        OrderLine.objects.filter(order=order, sku=sku).update(
            line_total=money(total), refunded_quantity=refunded_qty, refunded_amount=money(refunded)
        )
    Order.objects.filter(pk=order.pk).update(
        paid_total=money(paid), refunded_total=money(sum(refunded for *_, refunded in lines))
    )
    asked_by_step, made = [], {}  # made: key -> (the request it created, what it asked)
    for n, (kind, arg) in enumerate(steps):
        key, asked = f"k-{n}", arg
        if kind != "new":
            key, asked = f"k-{arg}", asked_by_step[arg]
            if kind == "conflict":
                asked = [("SKU-1", 7)] if asked != [("SKU-1", 7)] else None
        asked_by_step.append(asked)
        before = _state(order.pk)

        if key in made:
            # A key already used: the same body answers the same request, another is a conflict.
            first, first_asked = made[key]
            if asked == first_asked:
                refund, created = _submit(channel, order, key, asked)
                assert (refund.pk, created) == (first.pk, False)
            else:
                with pytest.raises(IdempotencyConflict):
                    _submit(channel, order, key, asked)
            assert _state(order.pk) == before, "a replay or a conflict writes nothing"
            continue

        expected = reference(order.pk, asked)
        if isinstance(expected, Refused):
            with pytest.raises(RefundValidationError) as refused:
                _submit(channel, order, key, asked)
            assert refused.value.errors == expected.errors, (asked, before)
            assert _state(order.pk) == before, "a refusal writes nothing"
            continue

        refund, created = _submit(channel, order, key, asked)
        assert created
        made[key] = (refund, asked)
        got = [
            (rl.order_line.sku, rl.quantity, cents(rl.amount)) for rl in RefundLine.objects.filter(request=refund).order_by("pk")
        ]
        assert got == expected.taken, asked
        total = sum(c for _, _, c in expected.taken)
        stored = RefundRequest.objects.get(pk=refund.pk)
        assert cents(stored.amount_requested) == cents(refund.amount_requested) == total
        assert stored.state == RefundRequest.State.SUBMITTED
        # What was taken is held, to the cent, on each line and on the order; nothing else moved.
        held_before = {sku: (hq, cents(ha)) for sku, hq, ha, _, _ in before[0]}
        for sku, qty, c in expected.taken:
            held_before[sku] = (held_before[sku][0] + qty, held_before[sku][1] + c)
        after = _state(order.pk)
        assert {sku: (hq, cents(ha)) for sku, hq, ha, _, _ in after[0]} == held_before
        assert [(sku, rq, ra) for sku, _, _, rq, ra in after[0]] == [(sku, rq, ra) for sku, _, _, rq, ra in before[0]]
        assert cents(after[1][0]) == cents(before[1][0]) + total and after[1][1] == before[1][1]
        assert after[2:] == (before[2] + 1, before[3] + len(expected.taken))


def test_units_of_a_sub_cent_price_never_take_more_than_the_line_has_left():
    """Four units for 0.02: half a cent rounds up for each of the first two, and then nothing
    is left for the third but the last unit's share: it gives 0.00, not a cent past the line."""
    channel = ChannelFactory()
    order = OrderFactory(channel=channel, lines=[("SKU-1", 4, Decimal("0.01")), ("SKU-2", 1, Decimal("5.00"))])
    OrderLine.objects.filter(order=order, sku="SKU-1").update(line_total=Decimal("0.02"))
    Order.objects.filter(pk=order.pk).update(paid_total=Decimal("5.02"))
    got = [_submit(channel, order, f"k-{i}", [("SKU-1", 1), ("SKU-2", 1)] if i == 2 else [("SKU-1", 1)]) for i in range(3)]
    assert [str(refund.amount_requested) for refund, _ in got] == ["0.01", "0.01", "5.00"]
    assert OrderLine.objects.get(order=order, sku="SKU-1").held_amount == Decimal("0.02")
