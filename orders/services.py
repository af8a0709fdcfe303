"""Order state changes, each recorded in the order's history; channel keys."""

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django_fsm import TransitionNotAllowed

from config.actors import SYSTEM, Actor
from config.errors import DomainValidationError, NotAllowed, NotFound
from orders.models import (
    ZERO,
    Address,
    AddressChange,
    Carrier,
    Channel,
    ChannelKey,
    Customer,
    CustomerMessage,
    Order,
    OrderEvent,
    OrderLine,
    Payment,
    Shipment,
    TrackingEvent,
    TrackingStatus,
)
from orders.signals import customer_changed

_FIELDS = {
    "pay": "paid_at",
    "ship": "shipped_at",
    "deliver": "delivered_at",
    "complete": "completed_at",
    "cancel": "cancelled_at",
}


def order_transition(*, order_id: int, actor: Actor, action: str, at=None, note: str = "") -> Order:
    """Move an order along pay → ship → deliver → complete (or cancel). Never backwards."""
    if action not in _FIELDS:
        raise ValueError(f"unknown order action {action}")
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        before = order.state
        try:
            getattr(order, action)(at=at or timezone.now())
        except TransitionNotAllowed:
            raise NotAllowed(f"Order {order.number} is {order.state}; it can't {action} now.") from None
        order.save(update_fields=["state", _FIELDS[action], "updated_at"])
        OrderEvent.objects.create(
            order=order, from_state=before, to_state=order.state, actor=actor.label, note=note, at=at or timezone.now()
        )
    return order


# --- channel keys --------------------------------------------------------------------------

# A key's `last_used_at` is at most this old while it is in use: it is written once a minute
# per key, not on every request.
KEY_LAST_USED_EVERY = timedelta(minutes=1)


def channel_key_issue(*, channel_id: int) -> tuple[ChannelKey, str]:
    """Give the channel a new API key; return it with the key itself, which is shown once
    (only its hash is stored). The key takes a free slot, or the slot of an expired key. The
    channel's other key, if any, expires `CHANNEL_KEY_ROTATION_DAYS` from now (or sooner, if
    it was set to): the client has that long to switch. NotAllowed when both are in use."""
    raw = f"rd_{secrets.token_urlsafe(32)}"
    now = timezone.now()
    with transaction.atomic():
        channel = Channel.objects.select_for_update().get(pk=channel_id)
        keys = {k.slot: k for k in ChannelKey.objects.filter(channel=channel).order_by("slot")}
        free = [slot for slot in ChannelKey.SLOTS if slot not in keys or keys[slot].is_expired(now)]
        if not free:
            raise NotAllowed(f"Channel {channel.name} already has two keys in use. Revoke one, or give it an expiry and wait.")
        slot = free[0]
        ChannelKey.objects.filter(channel=channel, slot=slot).delete()
        key = ChannelKey.objects.create(
            channel=channel, slot=slot, key_hash=Channel.hash_key(raw), key_prefix=raw[:8], created_at=now
        )
        until = now + timedelta(days=settings.CHANNEL_KEY_ROTATION_DAYS)
        ChannelKey.objects.filter(channel=channel).exclude(pk=key.pk).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=until)
        ).update(expires_at=until)
    return key, raw


def channel_key_use(*, key: str) -> ChannelKey | None:
    """The key of an active channel that `key` is, with its channel, or None. An expired key
    is returned as it is (the caller refuses it). A key in use gets its `last_used_at` set
    when the one read with it is over a minute old: one conditional UPDATE a minute per key,
    and of several workers that read the same old time, the WHERE lets only the first write."""
    found = ChannelKey.objects.select_related("channel").filter(key_hash=Channel.hash_key(key), channel__is_active=True).first()
    if found is None:
        return None
    now = timezone.now()
    if found.is_expired(now):
        return found
    stale = now - KEY_LAST_USED_EVERY
    if found.last_used_at is None or found.last_used_at <= stale:
        ChannelKey.objects.filter(pk=found.pk).filter(Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale)).update(
            last_used_at=now
        )
        found.last_used_at = now
    return found


# --- channel intake ------------------------------------------------------------------------

# How far each state is along pay → ship → deliver; an upsert only ever moves forward.
_RANK = {
    Order.State.PENDING_PAYMENT: 0,
    Order.State.PAID: 1,
    Order.State.SHIPPED: 2,
    Order.State.DELIVERED: 3,
    Order.State.COMPLETED: 4,
}
_STEPS = [("pay", Order.State.PAID), ("ship", Order.State.SHIPPED), ("deliver", Order.State.DELIVERED)]


def order_upsert(
    *, channel: Channel, actor: Actor, number: str, data: dict, note: str = "reported by the channel", create_only: bool = False
) -> tuple[Order, bool]:
    """Create or update a channel's order from its validated body; return (order, created).

    The one way an order is made, whether the channel API or a spreadsheet import brings it:
    a new order's history starts with "order received"; a changed shipping address is
    recorded as an `AddressChange`; the state only moves forward, through `order_transition`
    (with `note`), so the order's history is written. Lines already refunded or held by a
    request can't change. Sending the same body again writes nothing. `create_only` refuses
    an order that exists already. The customer's risk profile is refreshed after commit.
    """
    with transaction.atomic():
        customer = _upsert_customer(channel, data["customer"])
        order, created = _lock_or_create_order(channel, number, customer, data, actor)
        if create_only and not created:
            raise DomainValidationError({"order_number": [f"Order {number} already exists in {channel.name}."]})
        errors: dict[str, list[str]] = {}
        if not created and order.customer_id != customer.pk:
            errors["customer"] = ["This order belongs to another customer."]
        if not created and order.currency != data["currency"] and (order.held_total or order.refunded_total):
            errors["currency"] = ["The currency can't change once refunds exist."]
        payment = data.get("payment")
        paid_total = payment["amount"] if payment else order.paid_total
        if paid_total < order.refunded_total + order.held_total:
            errors["payment"] = [
                f"{paid_total} is less than what is already refunded or held ({order.refunded_total + order.held_total})."
            ]
        _upsert_lines(order, data["lines"], errors, created=created)
        if errors:
            raise DomainValidationError(errors)

        fields = {
            "currency": data["currency"],
            "placed_at": data["placed_at"],
            "shipping_fee": data.get("shipping_fee", order.shipping_fee),
            "paid_total": paid_total,
        }
        changed = [f for f, v in fields.items() if getattr(order, f) != v]
        for f in changed:
            setattr(order, f, fields[f])
        if data.get("shipping_address"):
            if _upsert_address(order, customer, data["shipping_address"]):
                changed.append("shipping_address")
        if changed:
            order.save(update_fields=[*changed, "updated_at"])
        if payment:
            _upsert_payment(order, payment, created=created)
        shipments = _upsert_shipments(order, data.get("shipments") or [])
        paid_at = payment.get("paid_at") if payment else None
        _move_forward(order, actor=actor, paid=bool(payment), paid_at=paid_at, shipments=shipments, note=note, created=created)
        customer_id = customer.pk
        transaction.on_commit(lambda: customer_changed.send(sender=Customer, customer_id=customer_id))
    order.refresh_from_db()
    return order, created


def _upsert_customer(channel: Channel, data: dict) -> Customer:
    values = {k: data.get(k, "") or "" for k in ("name", "phone", "email")}
    customer, created = Customer.objects.get_or_create(channel=channel, external_id=data["external_id"], defaults=values)
    if not created:
        changed = [k for k, v in values.items() if v and getattr(customer, k) != v]
        if changed:
            for k in changed:
                setattr(customer, k, values[k])
            customer.save(update_fields=changed)
    return customer


def _lock_or_create_order(channel, number, customer, data, actor: Actor) -> tuple[Order, bool]:
    order = Order.objects.select_for_update().filter(channel=channel, number=number).first()
    if order is not None:
        return order, False
    try:
        # Two first PUTs of the same order race: the unique constraint picks one creator.
        with transaction.atomic():
            order = Order.objects.create(
                channel=channel,
                number=number,
                customer=customer,
                currency=data["currency"],
                placed_at=data["placed_at"],
                shipping_fee=data.get("shipping_fee", ZERO),
            )
            OrderEvent.objects.create(order=order, to_state=order.state, actor=actor.label, note="order received")
            return order, True
    except IntegrityError:
        return Order.objects.select_for_update().get(channel=channel, number=number), False


def _upsert_address(order: Order, customer: Customer, data: dict) -> bool:
    parts = {k: data.get(k, "") or "" for k in ("line1", "city", "postcode")}
    parts["country"] = data.get("country") or "CN"
    fingerprint = Address.fingerprint_of(**parts)
    current = order.shipping_address
    if current is not None and current.fingerprint == fingerprint:
        return False
    address = Address.objects.filter(customer=customer, fingerprint=fingerprint).order_by("pk").first()
    if address is None:
        address = Address.objects.create(
            customer=customer,
            name=data.get("name", "") or "",
            phone=data.get("phone", "") or "",
            fingerprint=fingerprint,
            **parts,
        )
    if current is not None:
        AddressChange.objects.create(order=order, customer=customer, old_address=current, new_address=address)
    order.shipping_address = address
    return True


def _upsert_lines(order: Order, lines: list[dict], errors: dict, *, created: bool) -> None:
    # An order made in this transaction has no lines yet: nothing to lock or compare.
    existing = (
        {} if created else {line.sku: line for line in OrderLine.objects.select_for_update().filter(order=order).order_by("pk")}
    )
    problems: list[str] = []
    to_create, to_update = [], []
    for i, data in enumerate(lines):
        total = OrderLine.total_of(unit_price=data["unit_price"], quantity=data["quantity"])
        line = existing.pop(data["sku"], None)
        if line is None:
            to_create.append(
                OrderLine(
                    order=order,
                    sku=data["sku"],
                    name=data.get("name", "") or "",
                    quantity=data["quantity"],
                    unit_price=data["unit_price"],
                    line_total=total,
                )
            )
            continue
        new = {"name": data.get("name", "") or line.name, "quantity": data["quantity"], "unit_price": data["unit_price"]}
        if all(getattr(line, k) == v for k, v in new.items()):
            continue
        money_changed = line.quantity != new["quantity"] or line.unit_price != new["unit_price"]
        if money_changed and (line.held_quantity or line.refunded_quantity):
            problems.append(f"line {i + 1}: '{line.sku}' is refunded or held by a refund request; it can't change.")
            continue
        line.name, line.quantity, line.unit_price, line.line_total = new["name"], new["quantity"], new["unit_price"], total
        to_update.append(line)
    for line in existing.values():
        if line.held_quantity or line.refunded_quantity or line.refund_lines.exists():
            problems.append(f"'{line.sku}' is missing from the body but a refund request names it; it can't be removed.")
    if problems:
        errors["lines"] = problems
        return
    if existing:
        OrderLine.objects.filter(pk__in=[line.pk for line in existing.values()]).delete()
    if to_update:
        OrderLine.objects.bulk_update(to_update, ["name", "quantity", "unit_price", "line_total"])
    if to_create:
        OrderLine.objects.bulk_create(to_create)


def _upsert_payment(order: Order, data: dict, *, created: bool) -> None:
    values = {"method": data["method"], "reference": data["reference"], "amount": data["amount"], "paid_at": data.get("paid_at")}
    payment = None if created else Payment.objects.filter(order=order).first()
    if payment is None:
        Payment.objects.create(order=order, **values)
    elif any(getattr(payment, k) != v for k, v in values.items()):
        Payment.objects.filter(pk=payment.pk).update(**values)


def _upsert_shipments(order: Order, shipments: list[dict]) -> list[Shipment]:
    """Tracking numbers are unique per channel, not across channels: a channel learns nothing
    of another's parcels here, and can't claim one of them before its own channel does."""
    result = []
    for data in shipments:
        shipment = Shipment.objects.filter(
            channel_id=order.channel_id, carrier=data["carrier"], tracking_number=data["tracking_number"]
        ).first()
        if shipment is not None and shipment.order_id != order.pk:
            raise DomainValidationError({"shipments": [f"{data['carrier']} {data['tracking_number']} belongs to another order."]})
        shipped_at, delivered_at = data.get("shipped_at"), data.get("delivered_at")
        if shipment is None:
            try:
                # Another order's upsert may claim the same tracking number at the same moment.
                with transaction.atomic():
                    shipment = Shipment.objects.create(
                        order=order,
                        channel_id=order.channel_id,
                        carrier=data["carrier"],
                        tracking_number=data["tracking_number"],
                        shipped_at=shipped_at,
                        delivered_at=delivered_at,
                        last_status=TrackingStatus.DELIVERED if delivered_at else "",
                    )
            except IntegrityError:
                raise DomainValidationError(
                    {"shipments": [f"{data['carrier']} {data['tracking_number']} belongs to another order."]}
                ) from None
            _match_kept_events(shipment)
        else:
            changed = []
            if shipped_at and shipment.shipped_at != shipped_at:
                shipment.shipped_at = shipped_at
                changed.append("shipped_at")
            if delivered_at and shipment.delivered_at != delivered_at:
                shipment.delivered_at = delivered_at
                shipment.last_status = TrackingStatus.DELIVERED
                changed += ["delivered_at", "last_status"]
            if changed:
                shipment.save(update_fields=changed)
        result.append(shipment)
    return result


def _match_kept_events(shipment: Shipment) -> None:
    """Carrier events that arrived before the shipment was known now apply to it. Those no
    shipment had yet point to it; one that points to another channel's shipment of the same
    number stays there (an event points to one shipment) but counts for this one too."""
    scans = TrackingEvent.objects.filter(
        carrier=shipment.carrier, tracking_number=shipment.tracking_number, return_parcel__isnull=True
    )
    events = list(scans.order_by("occurred_at"))
    if not events:
        return
    scans.filter(shipment__isnull=True).update(shipment=shipment)
    shipment.last_status = events[-1].status
    delivered = [e.occurred_at for e in events if e.status == TrackingStatus.DELIVERED]
    if delivered and shipment.delivered_at is None:
        shipment.delivered_at = delivered[0]
    shipment.save(update_fields=["last_status", "delivered_at"])


def _move_forward(
    order: Order, *, actor: Actor, paid: bool, paid_at, shipments: list[Shipment], note: str, created: bool
) -> None:
    if order.state not in _RANK:
        return
    all_shipments = shipments or ([] if created else list(order.shipments.all()))
    target = Order.State.PAID if paid else order.state
    if any(s.shipped_at or s.last_status for s in all_shipments):
        target = Order.State.SHIPPED
    delivered = [s.delivered_at for s in all_shipments if s.delivered_at]
    if delivered:
        target = Order.State.DELIVERED
    shipped = [s.shipped_at for s in all_shipments if s.shipped_at]
    at = {"pay": order.paid_at, "ship": min(shipped) if shipped else None, "deliver": max(delivered) if delivered else None}
    if paid and at["pay"] is None:
        at["pay"] = paid_at
    for action, state in _STEPS:
        if _RANK[order.state] < _RANK[state] <= _RANK.get(target, 0):
            order = order_transition(order_id=order.pk, actor=actor, action=action, at=at[action], note=note)


def customer_message_record(*, channel: Channel, order_number: str, direction: str, body: str, sent_at=None) -> CustomerMessage:
    """Keep a message of the customer's conversation with the channel (support reads them)."""
    order = Order.objects.filter(channel=channel, number=order_number).only("pk", "customer_id").first()
    if order is None:
        raise NotFound(f"Order {order_number} does not exist.")
    message = CustomerMessage.objects.create(
        customer_id=order.customer_id,
        order=order,
        channel=channel,
        direction=direction,
        body=body,
        sent_at=sent_at or timezone.now(),
    )
    customer_id = order.customer_id
    transaction.on_commit(lambda: customer_changed.send(sender=Customer, customer_id=customer_id))
    return message


def tracking_event_record(
    *, carrier: Carrier, tracking_number: str, status: str, occurred_at, location: str = ""
) -> tuple[TrackingEvent, bool]:
    """Keep a carrier scan once; return (event, created). A replay changes nothing.

    An outbound shipment's scan updates it (and a delivery delivers the order). A scan of
    any other parcel is only kept: a return parcel's is matched by
    `refunds.services.carrier_scan_record`, which the carrier webhook calls.
    """

    with transaction.atomic():
        try:
            with transaction.atomic():
                event = TrackingEvent.objects.create(
                    carrier=carrier.code,
                    tracking_number=tracking_number,
                    status=status,
                    occurred_at=occurred_at,
                    location=location,
                )
        except IntegrityError:
            existing = TrackingEvent.objects.get(
                carrier=carrier.code, tracking_number=tracking_number, status=status, occurred_at=occurred_at
            )
            return existing, False
        # Tracking numbers are unique per channel, so two channels may both report this one
        # (at most one of them truly): the scan counts for each, and points to the first.
        shipments = list(Shipment.objects.filter(carrier=carrier.code, tracking_number=tracking_number).order_by("pk"))
        if shipments:
            TrackingEvent.objects.filter(pk=event.pk).update(shipment=shipments[0])
            event.shipment = shipments[0]
            for shipment in shipments:
                _apply_shipment_scan(shipment, event)
    return event, True


def _apply_shipment_scan(shipment: Shipment, event: TrackingEvent) -> None:
    latest = (
        TrackingEvent.objects.filter(carrier=shipment.carrier, tracking_number=shipment.tracking_number)
        .exclude(pk=event.pk)
        .order_by("-occurred_at")
        .values_list("occurred_at", flat=True)
        .first()
    )
    changed = []
    if latest is None or event.occurred_at >= latest:
        shipment.last_status = event.status
        changed.append("last_status")
    if event.status == TrackingStatus.DELIVERED and shipment.delivered_at is None:
        shipment.delivered_at = event.occurred_at
        changed.append("delivered_at")
    if changed:
        shipment.save(update_fields=changed)
    if event.status == TrackingStatus.DELIVERED:
        order = Order.objects.only("pk", "state").get(pk=shipment.order_id)
        steps = {Order.State.PAID: ["ship", "deliver"], Order.State.SHIPPED: ["deliver"]}.get(order.state, [])
        for action in steps:
            at = shipment.shipped_at or event.occurred_at if action == "ship" else event.occurred_at
            order_transition(order_id=order.pk, actor=SYSTEM, action=action, at=at, note=f"carrier {shipment}")
