"""The evidence report: everything support needs, captured the moment a request arrives.

It is a snapshot stored with the request; later changes to the order don't rewrite it.
"""

from django.db.models import Count, Q, Sum
from django.utils import timezone

from orders.models import AddressChange, CustomerMessage, Order, TrackingEvent


def _iso(dt):
    return dt.isoformat() if dt else None


def capture_evidence(refund) -> dict:
    order = refund.order
    now = timezone.now()
    payment = getattr(order, "payment", None) if hasattr(order, "payment") else None
    shipments = list(order.shipments.all())
    # By tracking number, not by the event's shipment: an event points to the first shipment
    # of its number, which may be another channel's (numbers are unique per channel).
    events_by_shipment: dict[tuple, list] = {}
    numbers = Q()
    for s in shipments:
        numbers |= Q(carrier=s.carrier, tracking_number=s.tracking_number)
    scans = TrackingEvent.objects.filter(numbers, return_parcel__isnull=True) if shipments else TrackingEvent.objects.none()
    for ev in scans.order_by("occurred_at"):
        events_by_shipment.setdefault((ev.carrier, ev.tracking_number), []).append(
            {"status": ev.status, "at": _iso(ev.occurred_at), "location": ev.location}
        )
    delivered = [s.delivered_at for s in shipments if s.delivered_at] or ([order.delivered_at] if order.delivered_at else [])
    history = Order.objects.filter(customer_id=order.customer_id).aggregate(
        orders=Count("pk"), paid=Sum("paid_total"), refunded=Sum("refunded_total")
    )
    refunds = refund.customer.refund_requests.aggregate(
        requests=Count("pk"), refunded_requests=Count("pk", filter=Q(state="refunded"))
    )
    messages = (
        CustomerMessage.objects.filter(customer__phone=refund.customer.phone)
        if refund.customer.phone
        else CustomerMessage.objects.filter(customer_id=refund.customer_id)
    )
    customer = refund.customer
    return {
        "captured_at": _iso(now),
        "customer": {
            "external_id": customer.external_id,
            "name": customer.name,
            "channel": refund.channel.name if refund.channel_id else None,
            "since": _iso(customer.created_at),
        },
        "request": {
            "reason": refund.reason,
            "kind": refund.requested_kind or refund.kind,
            "amount": str(refund.amount_requested),
            "note": refund.customer_note,
        },
        "order": {
            "number": order.number,
            "state": order.state,
            "placed_at": _iso(order.placed_at),
            "currency": order.currency,
            "paid_total": str(order.paid_total),
            "refunded_total": str(order.refunded_total),
            "history": [
                {"from": e.from_state, "to": e.to_state, "at": _iso(e.at), "actor": e.actor} for e in order.events.order_by("at")
            ],
            "lines": [
                {
                    "sku": ln.sku,
                    "name": ln.name,
                    "quantity": ln.quantity,
                    "unit_price": str(ln.unit_price),
                    "refunded_quantity": ln.refunded_quantity,
                }
                for ln in order.lines.order_by("pk")
            ],
        },
        "payment": (
            {
                "method": payment.method,
                "reference": payment.reference,
                "amount": str(payment.amount),
                "paid_at": _iso(payment.paid_at),
            }
            if payment
            else None
        ),
        "shipments": [
            {
                "carrier": s.carrier,
                "tracking_number": s.tracking_number,
                "shipped_at": _iso(s.shipped_at),
                "delivered_at": _iso(s.delivered_at),
                "events": events_by_shipment.get((s.carrier, s.tracking_number), []),
            }
            for s in shipments
        ],
        "days_since_delivery": (now - max(delivered)).days if delivered else None,
        "messages": [
            {"direction": m.direction, "body": m.body, "at": _iso(m.sent_at)} for m in messages.order_by("-sent_at")[:20]
        ],
        "customer_history": {
            "orders": history["orders"] or 0,
            "paid": str(history["paid"] or 0),
            "refunded": str(history["refunded"] or 0),
            "refund_requests": refunds["requests"] or 0,
            "refunded_requests": refunds["refunded_requests"] or 0,
            "refund_rate": round((refunds["requests"] or 0) / (history["orders"] or 1), 3),
        },
        "address_changes": [
            {"order": ac.order.number, "at": _iso(ac.changed_at), "to": str(ac.new_address)}
            for ac in AddressChange.objects.filter(customer_id=refund.customer_id)
            .select_related("order", "new_address")
            .order_by("-changed_at")[:20]
        ],
        "risk": {"score": refund.risk_score, "level": refund.risk_level, "signals": refund.risk_signals},
    }
