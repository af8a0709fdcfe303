"""`manage.py simulate_abuse`: a labelled population of honest customers and abusers.

Builds customers, addresses, orders, lines, refund requests and address changes with
`bulk_create` in one channel (`--channel`, default "simulation"). The label of each customer
goes to `SimulationTruth` only; names, ids and phones say nothing about it, so the scorer
sees the same kind of history it sees in production. Deterministic for a given `--seed`.
"""

import random
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from orders.models import Address, AddressChange, Channel, Customer, Order, OrderLine
from refunds.models import Reason, RefundRequest
from risk.models import SimulationTruth

ABUSER_KINDS = ["serial_returner", "wardrobing", "false_not_received", "address_churn", "linked_accounts"]
HONEST_KINDS = ["regular", "occasional_returner", "fashion_buyer", "mover", "household", "unlucky_delivery"]
HONEST_REASONS = [Reason.SIZE_FIT, Reason.DAMAGED, Reason.WRONG_ITEM, Reason.CHANGED_MIND, Reason.QUALITY_ISSUE]


@dataclass
class PlannedOrder:
    days_ago: float
    units: int
    price: Decimal
    address: int  # index into the customer's addresses
    returned_units: int = 0
    request_reason: str | None = None
    request_days_after: float = 3
    address_changes: int = 0


@dataclass
class Plan:
    kind: str
    is_abuser: bool
    age_days: int
    addresses: list[str] = field(default_factory=list)
    phone: str | None = None
    orders: list[PlannedOrder] = field(default_factory=list)


class Simulator:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.n = 0

    def _address(self) -> str:
        self.n += 1
        return f"{self.rng.randint(1, 999)} {self.rng.choice(['Nanjing', 'Huaihai', 'Renmin', 'Jiefang'])} Road #{self.n}"

    def _price(self) -> Decimal:
        return Decimal(self.rng.choice(["39.00", "59.90", "89.00", "129.00", "199.00", "259.00"]))

    def honest(self, kind: str) -> list[Plan]:
        r = self.rng
        plan = Plan(kind=kind, is_abuser=False, age_days=r.randint(60, 1500), addresses=[self._address()])
        n_orders = r.randint(1, 10)
        return_share = {
            "regular": 0.05,
            "occasional_returner": 0.2,
            "fashion_buyer": 0.4,
            "mover": 0.15,
            "household": 0.15,
            "unlucky_delivery": 0.2,
        }[kind]
        if kind == "mover":
            plan.addresses.append(self._address())
        for i in range(n_orders):
            units = r.randint(3, 6) if kind == "fashion_buyer" else r.choice([1, 1, 1, 2, 3])
            o = PlannedOrder(
                days_ago=r.uniform(1, 85),
                units=units,
                price=self._price(),
                address=len(plan.addresses) - 1 if kind == "mover" and i % 2 else 0,
            )
            if r.random() < return_share:
                o.request_reason = r.choice(HONEST_REASONS)
                o.returned_units = r.randint(1, max(1, units // 2)) if units >= 3 else units
            plan.orders.append(o)
        if kind == "unlucky_delivery" and plan.orders:
            plan.orders[0].request_reason = Reason.NOT_RECEIVED
            plan.orders[0].returned_units = plan.orders[0].units
        if kind == "mover" and plan.orders:
            plan.orders[0].address_changes = 1
        plans = [plan]
        if kind == "household":
            partner = self.honest("regular")[0]
            partner.kind = "household"
            partner.addresses = list(plan.addresses)
            plans.append(partner)
        return plans

    def abuser(self, kind: str) -> list[Plan]:
        r = self.rng
        plan = Plan(kind=kind, is_abuser=True, age_days=r.randint(5, 700), addresses=[self._address()])
        if kind == "serial_returner":
            for _ in range(r.randint(5, 10)):
                units = r.randint(1, 4)
                o = PlannedOrder(days_ago=r.uniform(1, 80), units=units, price=self._price(), address=0)
                if r.random() < 0.85:
                    o.request_reason = r.choice([Reason.CHANGED_MIND, Reason.SIZE_FIT, Reason.QUALITY_ISSUE])
                    o.returned_units = units if units < 3 else r.randint(units - 1, units)
                plan.orders.append(o)
        elif kind == "wardrobing":
            for _ in range(r.randint(3, 6)):
                units = r.randint(3, 8)
                o = PlannedOrder(days_ago=r.uniform(5, 80), units=units, price=self._price(), address=0)
                if r.random() < 0.85:
                    o.request_reason = r.choice([Reason.SIZE_FIT, Reason.CHANGED_MIND, Reason.USED_GOODS])
                    o.returned_units = max(1, round(units * r.uniform(0.75, 1.0)))
                    o.request_days_after = r.uniform(10, 25)  # worn, then returned
                plan.orders.append(o)
        elif kind == "false_not_received":
            for _ in range(r.randint(3, 7)):
                o = PlannedOrder(days_ago=r.uniform(1, 80), units=1, price=self._price(), address=0)
                if r.random() < 0.8:
                    o.request_reason = Reason.NOT_RECEIVED if r.random() < 0.85 else Reason.DAMAGED
                    o.returned_units = 1
                    o.request_days_after = r.uniform(3, 8)
                plan.orders.append(o)
        elif kind == "address_churn":
            plan.addresses += [self._address() for _ in range(r.randint(3, 5))]
            for i in range(r.randint(4, 7)):
                o = PlannedOrder(
                    days_ago=r.uniform(1, 28), units=r.randint(1, 2), price=self._price(), address=i % len(plan.addresses)
                )
                o.address_changes = r.choice([0, 1, 1, 2])
                if r.random() < 0.7:
                    o.request_reason = r.choice([Reason.NOT_RECEIVED, Reason.WRONG_ITEM, Reason.DAMAGED])
                    o.returned_units = o.units
                plan.orders.append(o)
        elif kind == "linked_accounts":
            phone = f"+86139{r.randint(0, 99999999):08d}"
            ring = []
            shared = self._address()
            for _ in range(r.randint(3, 4)):
                member = Plan(kind=kind, is_abuser=True, age_days=r.randint(2, 60), addresses=[shared])
                # most rings reuse a phone; some only a drop address
                member.phone = phone if r.random() < 0.7 else None
                for _ in range(r.randint(2, 4)):
                    o = PlannedOrder(
                        days_ago=r.uniform(1, min(50, member.age_days)), units=r.randint(1, 2), price=self._price(), address=0
                    )
                    if r.random() < 0.85:
                        o.request_reason = r.choice([Reason.NOT_RECEIVED, Reason.DAMAGED, Reason.CHANGED_MIND])
                        o.returned_units = o.units
                    member.orders.append(o)
                ring.append(member)
            return ring
        else:
            raise CommandError(f"unknown abuser kind {kind}")
        return [plan]


class Command(BaseCommand):
    help = "Generate a labelled population of honest customers and abusers (truth in SimulationTruth)."

    def add_arguments(self, parser):
        parser.add_argument("--honest", type=int, default=2000)
        parser.add_argument("--abusers", type=int, default=200)
        parser.add_argument("--seed", type=int, default=5)
        parser.add_argument("--channel", default="simulation")

    def handle(self, *args, honest, abusers, seed, channel, **options):
        rng = random.Random(seed)
        sim = Simulator(rng)
        plans: list[Plan] = []
        for i in range(honest):
            plans += sim.honest(HONEST_KINDS[i % len(HONEST_KINDS)])
        made = 0
        i = 0
        while made < abusers:
            group = sim.abuser(ABUSER_KINDS[i % len(ABUSER_KINDS)])
            plans += group
            made += len(group)
            i += 1
        rng.shuffle(plans)
        with transaction.atomic():
            counts = self._write(plans, channel, rng)
        self.stdout.write(
            f"simulated {counts['customers']} customers ({counts['abusers']} abusers), {counts['orders']} orders, "
            f"{counts['requests']} refund requests in channel '{channel}'"
        )

    def _write(self, plans: list[Plan], channel_name: str, rng: random.Random) -> dict:
        now = timezone.now()
        channel, _ = Channel.objects.get_or_create(name=channel_name, defaults={"kind": Channel.Kind.WEB_STORE})
        start = Customer.objects.filter(channel=channel).count()
        customers = Customer.objects.bulk_create(
            [
                Customer(
                    channel=channel,
                    external_id=f"SIM-{start + n:07d}",
                    name=f"Customer {start + n}",
                    phone=p.phone or f"+86137{start + n:08d}",
                    created_at=now - timedelta(days=p.age_days),
                )
                for n, p in enumerate(plans)
            ]
        )
        SimulationTruth.objects.bulk_create(
            [SimulationTruth(customer=c, kind=p.kind, is_abuser=p.is_abuser) for c, p in zip(customers, plans, strict=True)]
        )
        addresses = Address.objects.bulk_create(
            [
                Address(
                    customer=c, line1=line, fingerprint=Address.fingerprint_of(line1=line, country="CN"), created_at=c.created_at
                )
                for c, p in zip(customers, plans, strict=True)
                for line in p.addresses
            ]
        )
        by_customer: dict[int, list[Address]] = {}
        for a in addresses:
            by_customer.setdefault(a.customer_id, []).append(a)

        orders, lines, planned = [], [], []
        seq = Order.objects.filter(channel=channel).count()
        for c, p in zip(customers, plans, strict=True):
            for po in p.orders:
                seq += 1
                placed = now - timedelta(days=po.days_ago)
                total = po.price * po.units
                refunded = po.price * po.returned_units if po.request_reason else Decimal("0.00")
                o = Order(
                    channel=channel,
                    number=f"SIM-{seq:08d}",
                    customer=c,
                    placed_at=placed,
                    shipping_address=by_customer[c.pk][po.address],
                    paid_total=total,
                    refunded_total=refunded,
                    paid_at=placed,
                    shipped_at=placed + timedelta(days=1),
                    delivered_at=placed + timedelta(days=2),
                    created_at=placed,
                )
                o.__dict__["state"] = Order.State.DELIVERED
                orders.append(o)
                planned.append((c, p, po))
        orders = Order.objects.bulk_create(orders, batch_size=2000)
        requests, changes = [], []
        for o, (c, _plan, po) in zip(orders, planned, strict=True):
            lines.append(
                OrderLine(
                    order=o,
                    sku="SKU-1",
                    quantity=po.units,
                    unit_price=po.price,
                    line_total=po.price * po.units,
                    refunded_quantity=po.returned_units if po.request_reason else 0,
                    refunded_amount=o.refunded_total,
                )
            )
            if po.request_reason:
                at = min(now, o.placed_at + timedelta(days=po.request_days_after))
                r = RefundRequest(
                    channel=channel,
                    idempotency_key=f"sim-{o.number}",
                    order=o,
                    customer=c,
                    kind=RefundRequest.Kind.RETURN_AND_REFUND,
                    requested_kind=RefundRequest.Kind.RETURN_AND_REFUND,
                    reason=po.request_reason,
                    currency="CNY",
                    amount_requested=o.refunded_total,
                    amount_approved=o.refunded_total,
                    amount_paid=o.refunded_total,
                    created_at=at,
                    state_changed_at=at,
                    refunded_at=at,
                )
                r.__dict__["state"] = RefundRequest.State.REFUNDED
                requests.append(r)
            own = by_customer[c.pk]
            for k in range(po.address_changes):
                changes.append(
                    AddressChange(
                        order=o,
                        customer=c,
                        old_address=own[po.address],
                        new_address=own[(po.address + k + 1) % len(own)],
                        changed_at=o.placed_at + timedelta(hours=rng.randint(1, 20)),
                    )
                )
        OrderLine.objects.bulk_create(lines, batch_size=2000)
        RefundRequest.objects.bulk_create(requests, batch_size=2000)
        AddressChange.objects.bulk_create(changes, batch_size=2000)
        return {
            "customers": len(customers),
            "abusers": sum(p.is_abuser for p in plans),
            "orders": len(orders),
            "requests": len(requests),
        }
