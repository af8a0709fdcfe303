"""Load a believable merchant: channels, customers, orders with their whole story, refund
requests in every state at rest, payouts in every state, and one staff user per role.

The bulk of the history is written with `bulk_create` in chunks (states set directly, with
holds, refunded totals, payouts and event logs consistent with each other), so
`--orders 1000000` is practical on PostgreSQL. Then a few dozen requests are driven through
the real services, so their event logs, evidence reports and notifications are the real thing.

The bulk requests are decided by the merchant's own policy (`refunds.rules.decide` with each
channel's `RefundPolicy`), exactly as `refund_evaluate` would have decided them: a request is
planned for a resting state, and kept only when the rules' outcome leads there, with the
rules' trace, sentences and kind stored as they are. What a customer writes fits the reason.

Demo only: it refuses to run with DEBUG off. Staff passwords, channel API keys and carrier
secrets are random, printed once; `--seed N` makes everything repeatable, secrets included
(apart from timestamps, which are relative to now).
"""

import random
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from tqdm import tqdm

from config.actors import SYSTEM, Actor
from orders.models import (
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
)
from refunds import rules
from refunds import services as rs
from refunds.errors import RefundError, RefundNotAllowed
from refunds.gateways.simulated import SimulatedGateway
from refunds.gateways.simulated.models import GatewayLedgerEntry
from refunds.models import (
    DEFAULT_DISPUTE_REASONS,
    Coupon,
    Inspection,
    Payout,
    Reason,
    RefundEvent,
    RefundLine,
    RefundPolicy,
    RefundRequest,
    ReturnParcel,
    WalletEntry,
    move_set,
)
from refunds.services import LineRequest
from risk.models import RiskSettings
from risk.scoring import level_for
from risk.services import recompute_all, watchlist_add

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
RS = RefundRequest.State
PS = Payout.State

# username → role group (None for the superuser). Passwords are made at seeding time.
STAFF = {
    "admin": None,
    "support": "support",
    "support2": "support",
    "warehouse": "warehouse",
    "finance": "finance",
    "finance2": "finance",
    "risk": "risk",
}
# No 0/o, 1/l/i: a password read off a terminal is typed by hand.
TYPEABLE = "abcdefghjkmnpqrstuvwxyz23456789"

CHANNELS = [
    ("Tmall Marketplace", Channel.Kind.MARKETPLACE),
    ("WeChat Mini-program", Channel.Kind.MINI_PROGRAM),
    ("Web Store", Channel.Kind.WEB_STORE),
    ("Support Chat", Channel.Kind.SUPPORT_CHAT),
]
CARRIERS = [("sf", "SF Express"), ("yto", "YTO Express"), ("zto", "ZTO Express")]

CATALOG = [
    ("TEE-WHT-M", "Cotton T-shirt, white, M", "59.00"),
    ("TEE-BLK-L", "Cotton T-shirt, black, L", "59.00"),
    ("JEANS-32", "Slim jeans, 32", "239.00"),
    ("HOODIE-GRY", "Hoodie, grey", "199.00"),
    ("SOCKS-5P", "Socks, 5 pairs", "35.90"),
    ("SNEAKER-42", "Running shoes, 42", "459.00"),
    ("SNEAKER-39", "Running shoes, 39", "459.00"),
    ("JACKET-DWN", "Down jacket", "899.00"),
    ("CAP-NVY", "Baseball cap, navy", "79.00"),
    ("BAG-TOTE", "Canvas tote bag", "49.90"),
    ("PHONE-CASE", "Phone case", "29.90"),
    ("CABLE-USBC", "USB-C cable 2 m", "19.90"),
    ("EARBUDS-X", "Wireless earbuds", "349.00"),
    ("KETTLE-17", "Electric kettle 1.7 l", "159.00"),
    ("MUG-SET", "Ceramic mugs, set of 4", "88.00"),
    ("TEA-OOLONG", "Oolong tea 250 g", "68.00"),
    ("LAMP-DESK", "Desk lamp", "129.00"),
    ("PILLOW-MEM", "Memory foam pillow", "189.00"),
    ("TOWEL-2P", "Bath towels, 2", "99.00"),
    ("WATCH-SPT", "Sports watch", "1299.00"),
    ("BLENDER-P", "Personal blender", "269.00"),
    ("YOGA-MAT", "Yoga mat", "119.00"),
    ("BOOK-NOVEL", "Novel, paperback", "42.50"),
    ("TOY-BLOCKS", "Building blocks", "199.00"),
]
SURNAMES = "Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo He Lin Gao Luo".split()
GIVEN = "Wei Fang Na Min Jing Li Qiang Lei Jun Yang Yong Yan Jie Tao Ming Chao Xiu Xia Hui Ping Gang Hong".split()
CITIES = [("Shanghai", "200000"), ("Beijing", "100000"), ("Hangzhou", "310000"), ("Shenzhen", "518000"), ("Chengdu", "610000")]
STREETS = ["Nanjing Road", "Huaihai Road", "Wensan Road", "Shennan Avenue", "Chunxi Road", "Jianguo Road", "Binjiang Avenue"]
# What a customer writes, by the reason of the request: the request's note and the customer's
# messages on that order say the same thing (a "size or fit" request never asks where the
# parcel is). Only the two delivery reasons talk about the parcel.
CUSTOMER_NOTES = {
    "size_fit": ["The size is too small, can I return it?", "The shoes are a size too big.", "It is too tight, it does not fit."],
    "changed_mind": ["I changed my mind, I don't need it any more.", "I ordered it by mistake.", "Sorry, I no longer want it."],
    "damaged": ["The box was crushed and the item inside is damaged.", "The glass is cracked.", "It came broken in two pieces."],
    "wrong_item": ["I received the wrong colour.", "This is not the model I ordered.", "You sent me the wrong item."],
    "not_received": ["My parcel never arrived.", "The tracking says delivered but I have not received anything."],
    "shipping_delay": ["Where is my parcel? It is a week late.", "The delivery is taking far too long."],
    "not_as_described": ["The product does not look like the photos.", "The material is not what the listing says."],
    "used_goods": ["It looks used: there are scratches and fingerprints on it.", "The seal was already opened."],
    "quality_issue": ["The seam came apart after one wash.", "It stopped working after two days."],
    "other": ["Please call me about this order, it is complicated.", "I would like to talk to someone about this order."],
}
REPLIES = {
    "size_fit": "Sorry it does not fit! You can send it back for a refund.",
    "changed_mind": "No problem: an unused item can be sent back within {window} days of delivery.",
    "damaged": "Sorry about that! Please send us a photo of the damage.",
    "wrong_item": "Sorry for the mix-up! Please send us a photo of what you received.",
    "not_received": "Sorry for the trouble! We are checking with the carrier.",
    "shipping_delay": "Sorry for the wait! We are asking the carrier to hurry.",
    "not_as_described": "Could you send us a photo, so we can compare it with the listing?",
    "used_goods": "Sorry! Please send us a photo, we will look into it.",
    "quality_issue": "Sorry about that! Please send us a photo of the problem.",
    "other": "Thanks, a colleague will call you back today.",
}
# Support's question to the customer, and its reason for a rejection, fitting the request.
QUESTIONS = {
    "size_fit": "Are the labels still attached?",
    "changed_mind": "Is the item still unopened?",
    "not_received": "Could you check with your neighbours and the parcel locker?",
    "shipping_delay": "Could you wait two more days?",
    "other": "Could you tell us a little more?",
}
REJECTIONS = {
    "size_fit": "The item was worn: it can not be returned.",
    "changed_mind": "The item was opened and used: it can not be returned.",
    "not_received": "The carrier's photo shows the parcel handed over at the door.",
    "shipping_delay": "The parcel was delivered the next day.",
    "damaged": "The photos show no damage.",
    "wrong_item": "The photos show the item that was ordered.",
    "not_as_described": "The item matches the listing and its photos.",
    "used_goods": "The photos show the item was used for weeks.",
    "quality_issue": "The wear shown is normal use, not a defect.",
    "other": "We could not find a reason to refund this order.",
}
CONVERSATION_IN = ["Where is my parcel?", "Can you deliver to my office instead?", "Can I change the delivery time?"]
CONVERSATION_OUT = ["Sorry for the trouble! We are checking with the carrier.", "Done, we have noted it on your order."]
PLAIN_REASONS = ["size_fit", "changed_mind", "damaged", "wrong_item", "other", "not_received"]

ORDER_STATES = [("pending_payment", 3), ("paid", 6), ("shipped", 10), ("delivered", 46), ("completed", 32), ("cancelled", 3)]
# Where bulk requests rest. `approved` is never at rest: the service that approves routes the
# request on (to awaiting_return or ready_for_payout) in the same transaction.
# Open states are weighed up: most of them are dropped again for orders delivered too long
# ago (see `_plan`), which leaves roughly the mix a live desk has.
REFUND_STATES = [
    (RS.SUBMITTED, 1),
    (RS.UNDER_REVIEW, 40),
    (RS.AWAITING_CUSTOMER, 16),
    (RS.AWAITING_RETURN, 22),
    (RS.RETURN_IN_TRANSIT, 18),
    (RS.RECEIVED, 14),
    (RS.READY_FOR_PAYOUT, 30),
    (RS.REFUNDED, 36),
    (RS.REJECTED, 8),
    (RS.WITHDRAWN, 4),
    (RS.CANCELLED, 3),
    (RS.RESOLVED, 3),
]
OPEN = {RS.SUBMITTED, RS.UNDER_REVIEW, RS.AWAITING_CUSTOMER, RS.AWAITING_RETURN, RS.RETURN_IN_TRANSIT, RS.RECEIVED}
OPEN |= {RS.READY_FOR_PAYOUT}
RETURN_STATES = {RS.AWAITING_RETURN, RS.RETURN_IN_TRANSIT, RS.RECEIVED, RS.CANCELLED}
# A bulk request is evaluated this long after it is made, as its task would have been.
EVALUATED_AFTER = timedelta(seconds=2)
READY_PAYOUT_STATES = [(PS.PROCESSING, 7), (PS.APPROVED, 8), (PS.FAILED, 25), (PS.PENDING_APPROVAL, 60)]


def pick(rng: random.Random, weighted):
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


# The outcome of the policy that can lead to each resting state (approved requests rest in
# the states after `approved`). Submitted and withdrawn ones were never evaluated.
APPROVED_STATES = {RS.AWAITING_RETURN, RS.RETURN_IN_TRANSIT, RS.RECEIVED, RS.READY_FOR_PAYOUT, RS.REFUNDED, RS.CANCELLED}
OUTCOMES_FOR = {
    RS.UNDER_REVIEW: {rules.ESCALATE},
    RS.AWAITING_CUSTOMER: {rules.ESCALATE, rules.OFFER},
    RS.RESOLVED: {rules.ESCALATE, rules.OFFER},
    RS.REJECTED: {rules.ESCALATE, rules.REJECT},
} | {state: {rules.PASS, rules.ESCALATE} for state in APPROVED_STATES}


@dataclass
class RefundPlan:
    state: str
    kind: str  # what the customer asked for; the decision may waive the return
    reason: str
    method: str
    lines: list  # [(line index, qty, amount)]
    amount: Decimal
    created_at: object
    risk_score: int
    note: str
    decision: rules.Decision | None = None  # None: never evaluated (submitted, withdrawn)
    payouts: list = field(default_factory=list)  # [(state, method, amount)]

    @property
    def decided_kind(self) -> str:
        return self.decision.kind if self.decision else self.kind


class Command(BaseCommand):
    help = "Load demo data: a merchant with channels, customers, orders and refunds in every state, and staff logins."

    def add_arguments(self, parser):
        parser.add_argument("--orders", type=int, default=3000, help="How many orders (default 3000).")
        parser.add_argument(
            "--seed",
            type=int,
            default=None,
            help="Random seed: the same seed gives the same data, passwords and keys. Without it all are random.",
        )
        parser.add_argument("--if-empty", action="store_true", help="Do nothing if there are orders already.")
        parser.add_argument("--chunk", type=int, default=2000, help="Orders written per transaction.")
        parser.add_argument("--no-live", action="store_true", help="Skip the requests driven through the services.")

    def handle(self, *args, orders: int, seed: int | None, if_empty: bool, chunk: int, no_live: bool, **options):
        if not settings.DEBUG:
            # Demo data comes with staff logins and channel keys printed on screen: never on a
            # production database. A demo install opts in with DEBUG=1 (make demo does).
            raise CommandError(
                "seed_demo refuses to run with DEBUG off: it creates staff logins and API keys for a demo, "
                "never for a real install. Set DEBUG=1 to load demo data."
            )
        if if_empty and Order.objects.exists():
            self.stdout.write(
                "Demo data is already loaded; nothing to do. Its staff logins and channel keys were printed when it "
                "was loaded (python manage.py changepassword <user> sets a new password; "
                "create_channel <name> --kind <kind> --rotate gives a channel a new key)."
            )
            return
        self.rng = random.Random(seed)
        # Secrets come from the OS unless a seed asks for a repeatable demo; they have their
        # own generator so that the data tells the same story either way.
        self.secrets = random.Random(f"seed_demo secrets {seed}") if seed is not None else secrets.SystemRandom()
        self.now = timezone.now()
        self.serial = Order.objects.count()
        self.logins, self.keys = [], []
        self.users = self._staff()
        self.channels = self._channels()
        self.channel_by_id = {c.pk: c for c in self.channels}
        self.policies: dict[int, RefundPolicy] = {}
        self.order_channels = [c for c in self.channels if c.kind != Channel.Kind.SUPPORT_CHAT]
        n_customers = max(20, orders * 2 // 5)
        self.customers = self._customers(n_customers, chunk)
        with tqdm(total=orders, desc="orders", unit="order", disable=options["verbosity"] == 0) as bar:
            for start in range(0, orders, chunk):
                size = min(chunk, orders - start)
                with transaction.atomic():
                    self._orders_chunk(size)
                bar.update(size)
        if not no_live:
            self._live(self.rng)
        self.stdout.write("Computing risk profiles…")
        recompute_all()
        self._summary()
        self._print_secrets(seed)

    # --- people and channels -----------------------------------------------------------------

    def _secret(self, n: int) -> str:
        return "".join(self.secrets.choice(TYPEABLE) for _ in range(n))

    def _staff(self) -> dict:
        User = get_user_model()
        users = {}
        for username, role in STAFF.items():
            user = User.objects.filter(username=username).first()
            if user is None:
                password = "-".join(self._secret(4) for _ in range(4))
                user = User(username=username, is_staff=True, is_superuser=role is None, email=f"{username}@example.com")
                user.set_password(password)
                user.save()
                self.logins.append((username, password, role))
            else:
                self.logins.append((username, None, role))
            if role:
                user.groups.add(Group.objects.get(name=role))
            users[username] = user
        return users

    def _channels(self) -> list:
        channels = []
        for name, kind in CHANNELS:
            key = f"rd_{self._secret(32)}"
            channel, created = Channel.objects.get_or_create(name=name, defaults={"kind": kind})
            if created:
                ChannelKey.objects.create(channel=channel, slot=1, key_hash=Channel.hash_key(key), key_prefix=key[:8])
                self.keys.append((f"channel API key for {name}", key))
            channels.append(channel)
        for code, name in CARRIERS:
            secret = self._secret(40)
            _carrier, created = Carrier.objects.get_or_create(code=code, defaults={"name": name, "secret": secret})
            if created:
                self.keys.append((f"carrier webhook secret for {code}", secret))
        return channels

    def _policy(self, channel_id: int) -> RefundPolicy:
        """The policy that decides this channel's requests: the channel's own, or the default."""
        if channel_id not in self.policies:
            self.policies[channel_id] = rules.policy_for(self.channel_by_id[channel_id])
        return self.policies[channel_id]

    def _customers(self, n: int, chunk: int) -> list:
        """Create customers with one address each; return (id, channel_id, address_id) rows."""
        rng = self.rng
        base = Customer.objects.count()
        phones = [f"+86139{rng.randrange(10**8):08d}" for _ in range(max(1, n // 50))]
        out = []
        for start in tqdm(range(0, n, chunk), desc="customers", unit="chunk", disable=n <= chunk):
            size = min(chunk, n - start)
            with transaction.atomic():
                rows = []
                for i in range(start, start + size):
                    channel = self.order_channels[i % len(self.order_channels)]
                    # A few phones behind several accounts, so the risk signals have something to find.
                    phone = rng.choice(phones) if rng.random() < 0.03 else f"+86138{base + i:08d}"
                    rows.append(
                        Customer(
                            channel=channel,
                            external_id=f"{channel.kind[:3].upper()}-{base + i:07d}",
                            name=f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)}",
                            phone=phone,
                            email=f"customer{base + i}@example.com",
                            language=rng.choice(["zh-hans", "zh-hans", "zh-hans", "en"]),
                            created_at=self.now - timedelta(days=rng.uniform(30, 900)),
                        )
                    )
                Customer.objects.bulk_create(rows)
                addresses = [self._address(c) for c in rows]
                Address.objects.bulk_create(addresses)
                out.extend((c.pk, c.channel_id, a.pk, c.created_at) for c, a in zip(rows, addresses, strict=True))
        return out

    def _address(self, customer) -> Address:
        city, postcode = self.rng.choice(CITIES)
        line1 = (
            f"{self.rng.randrange(1, 999)} {self.rng.choice(STREETS)}, Apt {self.rng.randrange(1, 40)}0{self.rng.randrange(1, 9)}"
        )
        return Address(
            customer=customer,
            name=customer.name,
            phone=customer.phone,
            line1=line1,
            city=city,
            postcode=postcode,
            fingerprint=Address.fingerprint_of(line1=line1, city=city, postcode=postcode, country="CN"),
        )

    # --- orders and their history ---------------------------------------------------------------

    def _orders_chunk(self, size: int) -> None:
        rng, now = self.rng, self.now
        orders, specs = [], []
        for _ in range(size):
            self.serial += 1
            cust_id, channel_id, address_id, _cust_created = rng.choice(self.customers)
            state = pick(rng, ORDER_STATES)
            age = {
                "pending_payment": rng.uniform(0, 0.5),
                "paid": rng.uniform(0.1, 1.5),
                "shipped": rng.uniform(2, 6),
                "cancelled": rng.uniform(1, 60),
                "completed": rng.uniform(14, 120),
            }.get(state, rng.uniform(6, 120))
            placed = now - timedelta(days=age)
            lines = []
            for sku, name, price in rng.sample(CATALOG, k=rng.choice([1, 1, 1, 2, 2, 3, 4])):
                qty = rng.choice([1, 1, 1, 1, 2, 2, 3])
                unit = Decimal(price)
                total = unit * qty
                if qty >= 3 and rng.random() < 0.5:
                    total = (total * Decimal("0.9")).quantize(CENT, rounding=ROUND_HALF_UP)  # multi-buy discount
                lines.append([sku, name, qty, unit, total, 0, ZERO, 0, ZERO])
            fee = Decimal("0.00") if sum(ln[4] for ln in lines) >= 99 else Decimal("8.00")
            paid = state not in ("pending_payment", "cancelled")
            t = {"placed": placed}
            if paid:
                t["paid"] = placed + timedelta(minutes=rng.randrange(1, 30))
            if state in ("shipped", "delivered", "completed"):
                t["shipped"] = t["paid"] + timedelta(hours=rng.uniform(6, 40))
            if state in ("delivered", "completed"):
                t["delivered"] = t["shipped"] + timedelta(hours=rng.uniform(24, 96))
            if state == "completed":
                t["completed"] = t["delivered"] + timedelta(days=7)
            if state == "cancelled":
                t["cancelled"] = t.get("paid", placed) + timedelta(hours=rng.uniform(1, 20))
            paid_total = sum(ln[4] for ln in lines) + fee if paid else ZERO
            plan = None
            if paid and state in ("shipped", "delivered", "completed"):
                plan = self._plan(rng, state, lines, t, channel_id=channel_id, paid_total=paid_total)
            held = refunded = ZERO
            if plan:
                for idx, qty, amount in plan.lines:
                    if plan.state == RS.REFUNDED:
                        lines[idx][5] += qty
                        lines[idx][6] += amount
                        refunded += amount
                    elif plan.state in OPEN:
                        lines[idx][7] += qty
                        lines[idx][8] += amount
                        held += amount
            order = Order(
                channel_id=channel_id,
                number=f"{self.serial:08d}",
                customer_id=cust_id,
                placed_at=placed,
                state=state,
                shipping_address_id=address_id,
                shipping_fee=fee,
                paid_total=paid_total,
                refunded_total=refunded,
                held_total=held,
                paid_at=t.get("paid"),
                shipped_at=t.get("shipped"),
                delivered_at=t.get("delivered"),
                completed_at=t.get("completed"),
                cancelled_at=t.get("cancelled"),
                created_at=placed,
            )
            orders.append(order)
            specs.append((order, lines, t, plan, address_id))
        Order.objects.bulk_create(orders)

        order_lines, payments, shipments, events, messages = [], [], [], [], []
        for order, lines, t, plan, _addr in specs:
            for sku, name, qty, unit, total, rq, ra, hq, ha in lines:
                order_lines.append(
                    OrderLine(
                        order=order,
                        sku=sku,
                        name=name,
                        quantity=qty,
                        unit_price=unit,
                        line_total=total,
                        refunded_quantity=rq,
                        refunded_amount=ra,
                        held_quantity=hq,
                        held_amount=ha,
                    )
                )
            if "paid" in t:
                payments.append(
                    Payment(
                        order=order,
                        method=rng.choice(["alipay", "wechat_pay", "wechat_pay", "card"]),
                        reference=f"PAY-{order.number}",
                        amount=sum(ln[4] for ln in lines) + order.shipping_fee,
                        paid_at=t["paid"],
                    )
                )
            prev = "pending_payment"
            events.append(
                OrderEvent(order=order, from_state="", to_state=prev, actor=f"channel:{order.channel_id}", at=t["placed"])
            )
            for step in ("paid", "shipped", "delivered", "completed", "cancelled"):
                if step in t:
                    events.append(
                        OrderEvent(order=order, from_state=prev, to_state=step, actor=f"channel:{order.channel_id}", at=t[step])
                    )
                    prev = step
            if "shipped" in t:
                carrier = rng.choice(CARRIERS)[0]
                shipments.append(
                    Shipment(
                        order=order,
                        channel_id=order.channel_id,
                        carrier=carrier,
                        tracking_number=f"{carrier.upper()}{order.number}{rng.randrange(10, 99)}",
                        shipped_at=t["shipped"],
                        delivered_at=t.get("delivered"),
                        last_status="delivered"
                        if "delivered" in t
                        else rng.choice(["picked_up", "in_transit", "out_for_delivery"]),
                    )
                )
            if rng.random() < 0.3:
                if plan:
                    # The customer writes about what the request is for, around the time of it.
                    since = t.get("delivered") or t["shipped"]
                    first = max(since, plan.created_at - timedelta(hours=rng.uniform(1, 24)))
                    said = [plan.note, *CUSTOMER_NOTES[plan.reason]]
                    answers = [REPLIES[plan.reason].format(window=self._policy(order.channel_id).return_window_days)]
                else:
                    first = t["placed"] + timedelta(hours=rng.uniform(2, 72))
                    said, answers = CONVERSATION_IN, CONVERSATION_OUT
                for k in range(rng.randrange(1, 4)):
                    at = min(first + timedelta(hours=k * 5), self.now)
                    inbound = k % 2 == 0
                    messages.append(
                        CustomerMessage(
                            customer_id=order.customer_id,
                            order=order,
                            channel_id=order.channel_id,
                            direction="in" if inbound else "out",
                            body=(said[0] if k == 0 else rng.choice(said)) if inbound else rng.choice(answers),
                            sent_at=at,
                        )
                    )
        OrderLine.objects.bulk_create(order_lines)
        Payment.objects.bulk_create(payments)
        OrderEvent.objects.bulk_create(events)
        CustomerMessage.objects.bulk_create(messages)
        Shipment.objects.bulk_create(shipments)
        tracking = []
        for s in shipments:
            scans = [("picked_up", s.shipped_at), ("in_transit", s.shipped_at + timedelta(hours=8))]
            if s.delivered_at:
                scans += [("out_for_delivery", s.delivered_at - timedelta(hours=3)), ("delivered", s.delivered_at)]
            elif s.last_status == "out_for_delivery":
                scans.append(("out_for_delivery", min(s.shipped_at + timedelta(days=1), self.now)))
            for status, at in scans:
                if at <= self.now:
                    tracking.append(
                        TrackingEvent(
                            carrier=s.carrier,
                            tracking_number=s.tracking_number,
                            status=status,
                            occurred_at=at,
                            location=rng.choice(CITIES)[0],
                            shipment=s,
                            received_at=at,
                        )
                    )
        TrackingEvent.objects.bulk_create(tracking)
        self._address_changes(specs)
        self._refunds(specs, order_lines)

    def _address_changes(self, specs) -> None:
        picked = [(o, addr) for o, _l, t, _p, addr in specs if "shipped" not in t and self.rng.random() < 0.1]
        picked += [(o, addr) for o, _l, t, _p, addr in specs if "shipped" in t and self.rng.random() < 0.02]
        if not picked:
            return
        new = [self._address(Customer(pk=o.customer_id, name="", phone="")) for o, _ in picked]
        for a, (o, _) in zip(new, picked, strict=True):
            a.customer_id = o.customer_id
        Address.objects.bulk_create(new)
        AddressChange.objects.bulk_create(
            [
                AddressChange(
                    order=o,
                    customer_id=o.customer_id,
                    old_address_id=old,
                    new_address=a,
                    changed_at=o.placed_at + timedelta(hours=1),
                )
                for a, (o, old) in zip(new, picked, strict=True)
            ]
        )
        for a, (o, _) in zip(new, picked, strict=True):
            o.shipping_address_id = a.pk
        Order.objects.bulk_update([o for o, _ in picked], ["shipping_address"])

    # --- refunds --------------------------------------------------------------------------------

    def _plan(self, rng, order_state, lines, t, *, channel_id, paid_total) -> RefundPlan | None:
        if rng.random() > 0.2:
            return None
        policy = self._policy(channel_id)
        window = policy.return_window_days
        since = t.get("delivered") or t["shipped"]
        created = min(since + timedelta(days=rng.uniform(0.2, 20)), self.now - timedelta(minutes=5))
        if created < since:
            return None
        # The first requests take every resting state in turn, so even a tiny demo has them all.
        self.plans = getattr(self, "plans", 0)
        state = REFUND_STATES[self.plans][0] if self.plans < len(REFUND_STATES) else pick(rng, REFUND_STATES)
        if state == RS.SUBMITTED:
            created = self.now - timedelta(seconds=rng.uniform(1, 30))
        # Leave the request time to have got where it is (a return window to run out after
        # approval, a parcel to travel), so no event lies in the future.
        elapsed = {RS.CANCELLED: window + 2, RS.REFUNDED: 5, RS.READY_FOR_PAYOUT: 4, RS.RECEIVED: 4, RS.RETURN_IN_TRANSIT: 2}
        if state != RS.SUBMITTED:
            created = min(created, self.now - timedelta(days=elapsed.get(state, 0), hours=11))
        # ... and open work is recent: support does not leave a request waiting for months.
        fresh = {RS.UNDER_REVIEW: 3, RS.AWAITING_CUSTOMER: 4, RS.AWAITING_RETURN: 10, RS.RETURN_IN_TRANSIT: 12}
        fresh |= {RS.RECEIVED: 6, RS.READY_FOR_PAYOUT: 8}
        if state in fresh and created < self.now - timedelta(days=fresh[state]):
            return None
        if created < since:
            return None
        if order_state == "shipped" and state not in (RS.AWAITING_CUSTOMER, RS.RESOLVED, RS.WITHDRAWN, RS.UNDER_REVIEW):
            return None
        # Whole order most of the time, else part of one line.
        if rng.random() < 0.7 or all(ln[2] == 1 for ln in lines):
            chosen = [(i, ln[2], ln[4]) for i, ln in enumerate(lines)]
        else:
            i = rng.choice([i for i, ln in enumerate(lines) if ln[2] > 1] or [0])
            qty = rng.randrange(1, lines[i][2]) if lines[i][2] > 1 else 1
            chosen = [(i, qty, (lines[i][4] * qty / lines[i][2]).quantize(CENT, rounding=ROUND_HALF_UP))]
        amount = sum(a for _, _, a in chosen)
        reason = rng.choice(PLAIN_REASONS)
        disputes = policy.dispute_reasons or list(DEFAULT_DISPUTE_REASONS)
        if state == RS.UNDER_REVIEW and amount <= policy.auto_approve_limit and policy.dispute_reasons_enabled:
            reason = str(rng.choice(disputes))
        if state in (RS.RESOLVED, RS.AWAITING_CUSTOMER) and order_state == "shipped":
            reason = Reason.SHIPPING_DELAY.value
        kind = RefundRequest.Kind.RETURN_AND_REFUND
        if state not in RETURN_STATES and (reason in ("not_received", "shipping_delay") or rng.random() < 0.3):
            kind = RefundRequest.Kind.REFUND_ONLY
        risk_score = rng.choice([3, 8, 12, 20, 35, 55, 62])
        if state == RS.REJECTED and rng.random() < 0.5:
            # Half the rejections are the rules': asked after the return window had closed.
            late = since + timedelta(days=window + rng.uniform(1, 15))
            if late <= self.now - timedelta(hours=11):
                created = late
        decision = None
        if state not in (RS.SUBMITTED, RS.WITHDRAWN):
            # Decided by the channel's policy as refund_evaluate decides, from the same facts.
            def decide():
                facts = self._facts(
                    t, order_state, paid_total, amount=amount, reason=reason, kind=kind, risk_score=risk_score, at=created
                )
                return rules.decide(facts, policy)

            decision = decide()
            if decision.outcome == rules.PASS and state not in APPROVED_STATES and policy.risk_threshold_enabled:
                # A request at rest with a person though the policy passed it: the risk engine
                # scored this customer above the policy's threshold.
                if policy.risk_threshold < 100:
                    risk_score = rng.randint(policy.risk_threshold + 1, min(100, policy.risk_threshold + 25))
                    decision = decide()
            if decision.outcome not in OUTCOMES_FOR[state]:
                return None  # the policy would not have put this request there
            if state in RETURN_STATES and decision.kind != RefundRequest.Kind.RETURN_AND_REFUND:
                return None  # the policy waived the return, so no parcel is due
        method = pick(rng, [("original_payment", 80), ("store_credit", 14), ("coupon", 6)])
        self.plans += 1
        plan = RefundPlan(
            state=state,
            kind=kind,
            reason=reason,
            method=method,
            lines=chosen,
            amount=amount,
            created_at=created,
            risk_score=risk_score,
            note=rng.choice(CUSTOMER_NOTES[reason]),
            decision=decision,
        )
        if state == RS.READY_FOR_PAYOUT:
            self.ready = getattr(self, "ready", 0) + 1
            cycle = READY_PAYOUT_STATES[self.ready - 1][0] if self.ready <= len(READY_PAYOUT_STATES) else None
            plan.payouts = [(cycle or pick(rng, READY_PAYOUT_STATES), method, amount)]
        elif state == RS.REFUNDED:
            if rng.random() < 0.08 and method == "original_payment":
                # The card was closed: finance voided that payout and paid store credit.
                plan.method = "store_credit"
                plan.payouts = [(PS.FAILED, "original_payment", amount), (PS.SUCCEEDED, "store_credit", amount)]
            else:
                plan.payouts = [(PS.SUCCEEDED, method, amount)]
        return plan

    def _facts(self, t, order_state, paid_total, *, amount, reason, kind, risk_score, at) -> rules.Facts:
        """What `rules.gather_facts` reads for a bulk request, evaluated two seconds after it
        was made at `at`: its order has one shipment and no earlier request."""
        return rules.Facts(
            amount=amount,
            reason=reason,
            kind=kind,
            order_state=order_state,
            paid_total=paid_total,
            refunded_total=ZERO,
            delivered_at=t.get("delivered"),
            shipped_at=t["shipped"],
            carrier_shows_delivered="delivered" in t or order_state in ("delivered", "completed"),
            parcel_moving="delivered" not in t,
            other_refunds_on_order=0,
            risk_score=risk_score,
            watchlisted=False,
            now=at + EVALUATED_AFTER,
        )

    def _refunds(self, specs, order_lines) -> None:
        rng = self.rng
        support, warehouse, finance = self.users["support"], self.users["warehouse"], self.users["finance"]
        lines_by_order: dict[int, list] = {}
        for ol in order_lines:
            lines_by_order.setdefault(ol.order_id, []).append(ol)
        planned = [(order, plan) for order, _l, _t, plan, _a in specs if plan]
        if not planned:
            return
        requests, risk_settings = [], RiskSettings.current()
        for order, plan in planned:
            at = plan.created_at
            decided = at + timedelta(minutes=rng.uniform(1, 600))
            r = RefundRequest(
                channel_id=order.channel_id,
                idempotency_key=f"seed-{order.number}",
                order=order,
                customer_id=order.customer_id,
                kind=plan.decided_kind,
                requested_kind=plan.kind,
                reason=plan.reason,
                refund_method=plan.method,
                customer_note=plan.note,
                state=plan.state,
                currency=order.currency,
                amount_requested=plan.amount,
                created_at=at,
                state_changed_at=at if plan.state == RS.SUBMITTED else decided,
                risk_score=plan.risk_score,
            )
            r.risk_level = level_for(r.risk_score, risk_settings)
            self._decide(r, plan, support, decided)
            r.evidence = self._evidence(order, lines_by_order[order.pk], r)
            requests.append(r)
        RefundRequest.objects.bulk_create(requests)

        refund_lines, parcels, inspections, payouts = [], [], [], []
        for r, (order, plan) in zip(requests, planned, strict=True):
            ols = lines_by_order[order.pk]
            refund_lines += [RefundLine(request=r, order_line=ols[i], quantity=q, amount=a) for i, q, a in plan.lines]
            needs_parcel = plan.decided_kind == RefundRequest.Kind.RETURN_AND_REFUND and plan.state in (
                RETURN_STATES | {RS.READY_FOR_PAYOUT, RS.REFUNDED}
            )
            if needs_parcel:
                self.parcel_serial = getattr(self, "parcel_serial", ReturnParcel.objects.count()) + 1
                shipped = plan.state not in (RS.AWAITING_RETURN, RS.CANCELLED)
                received = plan.state in (RS.RECEIVED, RS.READY_FOR_PAYOUT, RS.REFUNDED)
                parcels.append(
                    ReturnParcel(
                        request=r,
                        return_code=f"9{self.parcel_serial:011d}",
                        address="Refund Desk Returns, 88 Warehouse Road, Hangzhou 310000, CN",
                        deadline=r.approved_at + timedelta(days=self._policy(r.channel_id).return_window_days),
                        carrier="sf" if shipped else "",
                        tracking_number=f"SFR{self.parcel_serial:010d}" if shipped else "",
                        shipped_at=r.approved_at + timedelta(days=1) if shipped else None,
                        received_at=r.approved_at + timedelta(days=3) if received else None,
                        received_by=warehouse if received else None,
                        created_at=r.approved_at,
                    )
                )
                if plan.state in (RS.READY_FOR_PAYOUT, RS.REFUNDED):
                    inspections.append(
                        Inspection(
                            request=r,
                            grade=rng.choice(["unopened", "opened"]),
                            disposition="restock",
                            passed=True,
                            inspected_by=warehouse,
                            inspected_at=r.approved_at + timedelta(days=3, hours=2),
                        )
                    )
            for state, method, amount in plan.payouts:
                payouts.append(self._payout(r, state, method, amount, finance))
        RefundLine.objects.bulk_create(refund_lines)
        ReturnParcel.objects.bulk_create(parcels)
        Inspection.objects.bulk_create(inspections)
        Payout.objects.bulk_create(payouts)
        self._money_trail(payouts)
        self._events(requests, planned, payouts, support, warehouse, finance)

    def _decide(self, r, plan, support, decided) -> None:
        """Fill in the decision fields as refund_evaluate, then support, would have."""
        s, decision = plan.state, plan.decision
        outcome = decision.outcome if decision else None
        if decision:
            r.evaluated_at = r.created_at + EVALUATED_AFTER
            r.rule_trace = decision.trace
            r.requires_second_review = decision.requires_second_review
        escalated = outcome == rules.ESCALATE
        if escalated:
            r.escalation_reason = decision.sentences(rules.ESCALATE)
        if outcome == rules.OFFER:
            r.alternative = dict(decision.alternative)  # offered by the policy itself
        elif s == RS.RESOLVED:  # offered by support
            r.alternative = (
                {"kind": "replacement", "description": "We will send a replacement at our cost instead of refunding it."}
                if plan.reason in ("not_received", "shipping_delay")
                else {"kind": "voucher", "description": "Keep the item and take a 30.00 coupon instead."}
            )
        if s in APPROVED_STATES:
            r.approved_at = r.evaluated_at if not escalated else decided
            r.amount_approved = plan.amount
            r.decided_by = support.username if escalated else "system"
            if escalated:
                r.approved_by = support
        if s == RS.REJECTED:
            if escalated:
                r.rejected_at = decided
                r.decided_by, r.decision_reason = support.username, REJECTIONS[plan.reason]
            else:
                r.rejected_at = r.state_changed_at = r.evaluated_at
                r.decided_by, r.decision_reason = "system", decision.sentences(rules.REJECT)
        if escalated and s not in (RS.UNDER_REVIEW, RS.AWAITING_CUSTOMER) and self.rng.random() < 0.8:
            # Support's verdicts feed the risk report (abusive rate, precision and recall).
            risky = r.risk_score > self._policy(r.channel_id).risk_threshold
            abusive = s == RS.REJECTED or (risky and self.rng.random() < 0.7)
            r.verdict = RefundRequest.Verdict.ABUSIVE if abusive else RefundRequest.Verdict.LEGITIMATE
            r.verdict_by, r.verdict_at = support, decided + timedelta(hours=1)
        if s == RS.RESOLVED:
            r.resolved_at = decided
            r.alternative["accepted_at"] = decided.isoformat()
        if s == RS.WITHDRAWN:
            r.withdrawn_at = decided
        if s == RS.CANCELLED:
            r.cancelled_at = r.approved_at + timedelta(days=self._policy(r.channel_id).return_window_days, hours=1)
        if s == RS.REFUNDED:
            r.refunded_at = decided + timedelta(days=4)
            r.amount_paid = plan.amount
        if s not in OPEN:
            r.holds_released_at = r.refunded_at or r.rejected_at or r.withdrawn_at or r.cancelled_at or r.resolved_at

    def _payout(self, r, state, method, amount, finance) -> Payout:
        base = (r.approved_at or r.created_at) + timedelta(hours=2)
        p = Payout(
            request=r,
            method=method,
            amount=amount,
            currency=r.currency,
            state=state,
            idempotency_key=uuid.UUID(int=self.rng.getrandbits(128)),
            created_at=base,
        )
        if state != PS.PENDING_APPROVAL:
            p.approved_by, p.approved_at = finance, base + timedelta(hours=1)
        if state in (PS.PROCESSING, PS.SUCCEEDED, PS.FAILED):
            p.attempts, p.processing_started_at = 1, base + timedelta(hours=1, seconds=2)
        if state == PS.SUCCEEDED:
            p.succeeded_at = base + timedelta(hours=1, seconds=4)
        if state == PS.FAILED:
            p.failed_at = base + timedelta(hours=1, seconds=12)
            # Only an answer that says "not paid" fails a payout; a timeout leaves it unknown.
            p.error, p.failure_permanent = self.rng.choice(
                [
                    ("declined by the gateway: card closed", True),
                    ("declined by the gateway: insufficient merchant balance", False),
                ]
            )
        return p

    def _money_trail(self, payouts) -> None:
        """What the gateway, the wallet and the coupons show for the succeeded payouts."""
        ledger, wallet, coupons = [], [], []
        for p in payouts:
            if p.state != PS.SUCCEEDED:
                continue
            if p.method == "original_payment":
                ref = f"SIM-{p.idempotency_key.hex[:16].upper()}"
                ledger.append(
                    GatewayLedgerEntry(
                        idempotency_key=str(p.idempotency_key),
                        payment_reference=f"PAY-{p.request.order.number}",
                        amount=p.amount,
                        currency=p.currency,
                        reference=ref,
                        created_at=p.succeeded_at,
                    )
                )
                p.gateway_reference = ref
            elif p.method == "store_credit":
                wallet.append(
                    WalletEntry(
                        customer_id=p.request.customer_id,
                        amount=p.amount,
                        currency=p.currency,
                        payout=p,
                        note=f"refund {p.request.number}",
                        created_at=p.succeeded_at,
                    )
                )
            else:
                code = p.idempotency_key.hex[:12].upper()
                coupons.append(
                    Coupon(
                        code=code,
                        customer_id=p.request.customer_id,
                        amount=p.amount,
                        currency=p.currency,
                        expires_at=p.succeeded_at + timedelta(days=90),
                        payout=p,
                        created_at=p.succeeded_at,
                    )
                )
                p.gateway_reference = f"COUPON-{code}"
        GatewayLedgerEntry.objects.bulk_create(ledger)
        WalletEntry.objects.bulk_create(wallet)
        for w in wallet:
            w.payout.gateway_reference = f"WALLET-{w.pk}"
        Coupon.objects.bulk_create(coupons)
        Payout.objects.bulk_update([p for p in payouts if p.gateway_reference], ["gateway_reference"])

    def _events(self, requests, planned, payouts, support, warehouse, finance) -> None:
        U, C, SYS = RefundEvent.ActorKind.USER, RefundEvent.ActorKind.CHANNEL, RefundEvent.ActorKind.SYSTEM
        events = []

        def ev(r, action, frm, to, kind, at, user=None, note="", payout=None):
            events.append(
                RefundEvent(
                    request=r,
                    payout=payout,
                    action=action,
                    from_state=frm,
                    to_state=to,
                    actor_kind=kind,
                    actor_user=user,
                    actor_channel_id=r.channel_id if kind == C else None,
                    note=note,
                    public=payout is None,
                    at=at,
                )
            )

        for r, (_order, plan) in zip(requests, planned, strict=True):
            s, t0 = plan.state, r.created_at
            ev(r, "submit", "", RS.SUBMITTED, C, t0)
            if s == RS.SUBMITTED:
                continue
            t1 = r.evaluated_at
            if s == RS.WITHDRAWN:
                ev(r, "withdraw", RS.SUBMITTED, RS.WITHDRAWN, C, r.withdrawn_at)
                continue
            outcome = plan.decision.outcome
            if outcome == rules.OFFER:
                note = plan.decision.sentences(rules.OFFER)
                ev(r, "offer_alternative", RS.SUBMITTED, RS.AWAITING_CUSTOMER, SYS, t1, note=note)
                if s == RS.RESOLVED:
                    ev(r, "accept_alternative", RS.AWAITING_CUSTOMER, RS.RESOLVED, C, r.resolved_at)
                continue
            if outcome == rules.REJECT:
                ev(r, "reject_automatically", RS.SUBMITTED, RS.REJECTED, SYS, t1, note=r.decision_reason)
                continue
            if outcome == rules.ESCALATE:
                ev(r, "escalate", RS.SUBMITTED, RS.UNDER_REVIEW, SYS, t1, note=r.escalation_reason)
                if s == RS.AWAITING_CUSTOMER:
                    ev(
                        r,
                        "ask_customer",
                        RS.UNDER_REVIEW,
                        RS.AWAITING_CUSTOMER,
                        U,
                        r.state_changed_at,
                        support,
                        QUESTIONS.get(plan.reason, "Could you send us a photo?"),
                    )
                    continue
                if s == RS.UNDER_REVIEW:
                    continue
                if s == RS.RESOLVED:
                    offered = r.evaluated_at + timedelta(seconds=30)
                    ev(
                        r,
                        "offer_alternative",
                        RS.UNDER_REVIEW,
                        RS.AWAITING_CUSTOMER,
                        U,
                        offered,
                        support,
                        r.alternative["description"],
                    )
                    ev(r, "accept_alternative", RS.AWAITING_CUSTOMER, RS.RESOLVED, C, r.resolved_at)
                    continue
                if s == RS.REJECTED:
                    ev(r, "reject", RS.UNDER_REVIEW, RS.REJECTED, U, r.rejected_at, support, r.decision_reason)
                    continue
                ev(r, "approve", RS.UNDER_REVIEW, "approved", U, r.approved_at, support)
            else:
                ev(r, "approve_automatically", RS.SUBMITTED, "approved", SYS, r.approved_at, note="all rules passed")
            if plan.decided_kind == RefundRequest.Kind.REFUND_ONLY:
                ev(r, "ready_without_return", "approved", RS.READY_FOR_PAYOUT, SYS, r.approved_at)
            else:
                ev(r, "await_return", "approved", RS.AWAITING_RETURN, SYS, r.approved_at)
                if s == RS.CANCELLED:
                    ev(
                        r,
                        "expire",
                        RS.AWAITING_RETURN,
                        RS.CANCELLED,
                        SYS,
                        r.cancelled_at,
                        note="no parcel within the return window",
                    )
                    continue
                if s == RS.AWAITING_RETURN:
                    continue
                ev(r, "return_shipped", RS.AWAITING_RETURN, RS.RETURN_IN_TRANSIT, C, r.approved_at + timedelta(days=1))
                if s == RS.RETURN_IN_TRANSIT:
                    continue
                ev(r, "receive", RS.RETURN_IN_TRANSIT, RS.RECEIVED, U, r.approved_at + timedelta(days=3), warehouse)
                if s == RS.RECEIVED:
                    continue
                ev(
                    r,
                    "inspection_passed",
                    RS.RECEIVED,
                    RS.READY_FOR_PAYOUT,
                    U,
                    r.approved_at + timedelta(days=3, hours=2),
                    warehouse,
                )
            if s == RS.REFUNDED:
                ev(r, "complete", RS.READY_FOR_PAYOUT, RS.REFUNDED, SYS, r.refunded_at)
        for p in payouts:
            r = p.request
            if p.approved_at:
                ev(r, "payout_approve", PS.PENDING_APPROVAL, PS.APPROVED, U, p.approved_at, finance, payout=p)
            if p.processing_started_at:
                ev(r, "payout_execute", PS.APPROVED, PS.PROCESSING, SYS, p.processing_started_at, payout=p)
            if p.state == PS.SUCCEEDED:
                ev(r, "payout_succeeded", PS.PROCESSING, PS.SUCCEEDED, SYS, p.succeeded_at, note=p.gateway_reference, payout=p)
            if p.state == PS.FAILED:
                ev(r, "payout_failed", PS.PROCESSING, PS.FAILED, SYS, p.failed_at, note=p.error, payout=p)
        # A refunded request whose first payout failed: finance voided it and paid store credit.
        voided = []
        for r, (_o, plan) in zip(requests, planned, strict=True):
            if plan.state == RS.REFUNDED and len(plan.payouts) == 2:
                voided.append(r.pk)
        if voided:
            failed = [p for p in payouts if p.request.pk in set(voided) and p.state == PS.FAILED]
            for p in failed:
                ev(p.request, "payout_void", PS.FAILED, PS.VOIDED, U, p.failed_at + timedelta(hours=3), finance, payout=p)
            move_set(Payout.objects.filter(pk__in=[p.pk for p in failed]), Payout.void, at=self.now)
        RefundEvent.objects.bulk_create(events, batch_size=5000)

    def _evidence(self, order, lines, r) -> dict:
        delivered = order.delivered_at
        return {
            "captured_at": r.created_at.isoformat(),
            "order": {
                "number": order.number,
                "state": order.state,
                "placed_at": order.placed_at.isoformat(),
                "currency": order.currency,
                "paid_total": str(order.paid_total),
                "refunded_total": "0.00",
                "history": [],
                "lines": [
                    {
                        "sku": ln.sku,
                        "name": ln.name,
                        "quantity": ln.quantity,
                        "unit_price": str(ln.unit_price),
                        "refunded_quantity": 0,
                    }
                    for ln in lines
                ],
            },
            "payment": {"reference": f"PAY-{order.number}", "amount": str(order.paid_total)},
            "shipments": [],
            "days_since_delivery": (r.created_at - delivered).days if delivered else None,
            "messages": [],
            "customer_history": {},
            "address_changes": [],
            "risk": {"score": r.risk_score, "level": r.risk_level, "signals": []},
            "note": "demo data (bulk): a short snapshot",
        }

    # --- the real thing -------------------------------------------------------------------------

    def _live(self, rng) -> None:
        """A few dozen requests driven through the services, with their real events and evidence.

        Tasks these services queue (evaluation, payout execution, notifications) go to the
        django-q2 broker as in production; the explicit calls below do the same work at once,
        so when the cluster starts those queued tasks find nothing left to do, except sending
        the notifications. Amounts and ages that must cross a line of the policy (the
        auto-approve limit, the return window) are taken from the order's channel policy.
        """
        u = {k: Actor.for_user(v) for k, v in self.users.items()}
        support_chat = next(c for c in self.channels if c.kind == Channel.Kind.SUPPORT_CHAT)

        def submit(order, *, kind="return_and_refund", reason="size_fit", method="original_payment", lines=None):
            refund, _ = rs.refund_submit(
                actor=Actor.for_channel(order.channel),
                channel=order.channel,
                idempotency_key=f"live-{order.number}",
                order_number=order.number,
                kind=kind,
                reason=reason,
                lines=lines,
                refund_method=method,
                customer_note=rng.choice(CUSTOMER_NOTES[reason]),
            )
            rs.refund_evaluate(refund_id=refund.pk, actor=SYSTEM)
            return refund.pk

        def payout_of(rid):
            return Payout.objects.filter(request_id=rid).order_by("-pk").first()

        def pay(rid, mode="ok"):
            decided(rid)
            p = payout_of(rid)
            if p is None:
                refund = RefundRequest.objects.get(pk=rid)
                raise RefundNotAllowed(f"{refund.number} is {refund.state} ({refund.escalation_reason}), with no payout")
            SimulatedGateway.set_mode(mode, calls=1)
            rs.payout_approve(payout_id=p.pk, actor=u["finance"])
            rs.payout_execute(payout_id=p.pk)
            SimulatedGateway.set_mode("ok")
            return p.pk

        def decided(rid):
            # The risk engine may send any request to a person (and a watch-listed customer's
            # to two): approve it the way support would.
            for who in ("support", "support2"):
                if RefundRequest.objects.get(pk=rid).state == RS.UNDER_REVIEW:
                    rs.refund_approve(refund_id=rid, actor=u[who], note="Checked the evidence.")
            return rid

        def returned(rid, *, inspect=None):
            decided(rid)
            refund = RefundRequest.objects.get(pk=rid)
            rs.return_ship(refund_id=rid, actor=Actor.for_channel(refund.channel), carrier="sf", tracking_number=f"SFL{rid:09d}")
            if inspect is None:
                return
            rs.return_receive(code=refund.return_parcel.return_code, actor=u["warehouse"])
            if inspect:
                rs.return_inspect(refund_id=rid, actor=u["warehouse"], grade=inspect, disposition="restock", note="checked")

        def review(order, prefer=None):
            # A dispute reason of the order's policy: the policy sends it to a person.
            disputes = [str(r) for r in self._policy(order.channel_id).dispute_reasons or DEFAULT_DISPUTE_REASONS]
            return submit(order, reason=prefer if prefer in disputes else rng.choice(disputes))

        def s_paid(method):
            return lambda: pay(submit(self._fresh_order(items=[("CABLE-USBC", 1)]), kind="refund_only", method=method))

        def s_declined():
            pay(submit(self._fresh_order(items=[("PHONE-CASE", 1)]), kind="refund_only"), mode="fail")

        def s_timeout_retry():
            # Paid, then timed out: unknown until the gateway, asked, says it paid.
            pid = pay(submit(self._fresh_order(items=[("SOCKS-5P", 1)]), kind="refund_only"), mode="timeout_after_success")
            rs.payout_check_status(payout_id=pid)

        def s_unknown():
            # Timed out before paying: waits in finance's "outcome unknown" queue until the
            # cluster's sweeper asks the gateway (which will say it did not pay).
            pay(submit(self._fresh_order(items=[("SOCKS-5P", 1)]), kind="refund_only"), mode="timeout")

        def s_approved_payout():
            # Executed by the q2 cluster once it runs (the task waits in the broker).
            rid = decided(submit(self._fresh_order(items=[("CABLE-USBC", 2)]), kind="refund_only"))
            rs.payout_approve(payout_id=payout_of(rid).pk, actor=u["finance2"])

        def s_voided():
            pid = pay(submit(self._fresh_order(items=[("PHONE-CASE", 1)]), kind="refund_only"), mode="decline_permanent")
            rs.payout_void(
                payout_id=pid,
                actor=u["finance"],
                note="Card closed; the customer will take store credit.",
                reissue_method="store_credit",
            )

        def s_ready():
            returned(submit(self._fresh_order(items=[("TEE-WHT-M", 2)])), inspect="unopened")

        def s_awaiting():
            submit(self._fresh_order(items=[("HOODIE-GRY", 1)]))

        def s_in_transit():
            returned(submit(self._fresh_order(items=[("CAP-NVY", 1)])))

        def s_received():
            returned(submit(self._fresh_order(items=[("KETTLE-17", 1)])), inspect="")

        def s_inspection_failed():
            returned(submit(self._fresh_order(items=[("SNEAKER-42", 1)]), reason="size_fit"), inspect="used")

        def s_review():
            review(self._fresh_order(items=[("JEANS-32", 1)]))

        def s_big_review():
            # The cheapest item above the policy's auto-approve limit.
            submit(self._fresh_order(items=lambda policy: [(self._sku_above(policy.auto_approve_limit), 1)]), reason="damaged")

        def s_ask(resume=False):
            def run():
                rid = review(self._fresh_order(items=[("LAMP-DESK", 1)]))
                rs.refund_ask_customer(refund_id=rid, actor=u["support"], question="Could you send a photo of the label?")
                if resume:
                    order_channel = Actor.for_channel(RefundRequest.objects.get(pk=rid).channel)
                    rs.refund_resume(refund_id=rid, actor=order_channel, message="Here is the photo you asked for.")

            return run

        def s_reject():
            rid = review(self._fresh_order(items=[("PILLOW-MEM", 1)]), prefer="used_goods")
            reason = RefundRequest.objects.get(pk=rid).reason
            rs.refund_reject(refund_id=rid, actor=u["support"], reason=REJECTIONS[reason])

        def s_approve():
            rid = review(self._fresh_order(items=[("BLENDER-P", 1)]), prefer="quality_issue")
            rs.refund_approve(refund_id=rid, actor=u["support"], note="Known batch problem.")

        def s_offer(accept=None):
            def run():
                rid = submit(
                    # Within the auto-approve limit, so the policy's own offer is what it decides.
                    self._fresh_order(
                        items=lambda policy: [(self._sku_within(policy.auto_approve_limit, "YOGA-MAT"), 1)], state="shipped"
                    ),
                    kind="refund_only",
                    reason="shipping_delay",
                )
                actor = Actor.for_channel(RefundRequest.objects.get(pk=rid).channel)
                if accept is True:
                    rs.refund_accept_alternative(refund_id=rid, actor=actor)
                elif accept is False:
                    rs.refund_decline_alternative(refund_id=rid, actor=actor)

            return run

        def s_withdraw():
            rid = submit(self._fresh_order(items=[("BAG-TOTE", 1)]))
            rs.refund_withdraw(
                refund_id=rid, actor=Actor.for_channel(RefundRequest.objects.get(pk=rid).channel), note="found a use"
            )

        def s_late():
            # Delivered a week after the policy's return window closed: rejected by the rules.
            submit(self._fresh_order(items=[("MUG-SET", 1)], age_days=lambda policy: policy.return_window_days + 10))

        def s_expired():
            # Asked well within the window; then no parcel came before the deadline.
            rid = submit(self._fresh_order(items=[("TEA-OOLONG", 1)], age_days=lambda policy: 3 + policy.return_window_days // 2))
            ReturnParcel.objects.filter(request_id=rid).update(deadline=self.now - timedelta(hours=1))
            rs.refund_expire(refund_id=rid, actor=SYSTEM)

        def s_support_chat():
            order = self._fresh_order(items=[("BOOK-NOVEL", 2)])
            refund, _ = rs.refund_submit(
                actor=u["support"],
                channel=support_chat,
                order_channel=order.channel,
                idempotency_key=f"chat-{order.number}",
                order_number=order.number,
                kind="refund_only",
                reason="wrong_item",
                lines=[LineRequest("BOOK-NOVEL", 1)],
                customer_note="Customer on chat: one of the two books is the wrong title.",
            )
            rs.refund_evaluate(refund_id=refund.pk, actor=SYSTEM)

        def s_watchlisted():
            order = self._fresh_order(items=[("CABLE-USBC", 1)])
            watchlist_add(customer_id=order.customer_id, actor=u["risk"], note="Demo: chargebacks reported by the marketplace.")
            rid = submit(order, kind="refund_only")
            rs.refund_approve(refund_id=rid, actor=u["support"], note="Looks fine to me; second reviewer please.")

        def s_four_eyes():
            rid = submit(self._fresh_order(items=[("WATCH-SPT", 1)]), reason="damaged")
            rs.refund_approve(refund_id=rid, actor=u["support2"], note="Photos confirm the cracked glass.")
            returned(rid, inspect="opened")
            rs.payout_approve(payout_id=payout_of(rid).pk, actor=u["finance"])  # the first of two

        scenarios = (
            [s_paid("original_payment")] * 3
            + [s_paid("store_credit")] * 2
            + [s_paid("coupon"), s_declined, s_declined, s_timeout_retry, s_unknown, s_approved_payout, s_voided]
            + [s_ready] * 4
            + [s_awaiting] * 3
            + [s_in_transit] * 2
            + [s_received] * 2
            + [s_inspection_failed]
            + [s_review] * 5
            + [s_big_review]
            + [s_ask(), s_ask(), s_ask(resume=True)]
            + [s_reject] * 2
            + [s_approve] * 2
            + [s_offer(), s_offer(accept=True), s_offer(accept=False)]
            + [s_withdraw] * 2
            + [s_late] * 2
            + [s_expired, s_support_chat, s_support_chat, s_watchlisted, s_four_eyes]
        )
        failures = []
        for scenario in tqdm(scenarios, desc="live requests", unit="req"):
            try:
                scenario()
            except RefundError as exc:
                failures.append(f"{getattr(scenario, '__name__', scenario)}: {exc}")
        SimulatedGateway.set_mode("ok")
        for f in failures:
            self.stderr.write(f"  a live demo request did not go as planned: {f}")

    def _fresh_order(self, *, items, state="delivered", age_days=None):
        """One order with its payment, shipment, tracking and history, for the live requests.

        `items` and `age_days` may be functions of the order's channel policy."""
        rng, now = self.rng, self.now
        cust_id, channel_id, address_id, _ = rng.choice(self.customers)
        policy = self._policy(channel_id)
        items = items(policy) if callable(items) else items
        age_days = age_days(policy) if callable(age_days) else age_days
        self.serial += 1
        if age_days is None:
            # Shipped a day after, delivered three days after it was placed: asked within the
            # policy's return window.
            age_days = 3 + rng.uniform(1, max(1, min(9, policy.return_window_days - 2)))
        age = age_days
        placed = now - timedelta(days=age)
        t = {"paid": placed + timedelta(minutes=5), "shipped": placed + timedelta(days=1)}
        if state == "delivered":
            t["delivered"] = placed + timedelta(days=3)
        catalog = {sku: (name, Decimal(price)) for sku, name, price in CATALOG}
        total = sum(catalog[sku][1] * qty for sku, qty in items)
        fee = ZERO if total >= 99 else Decimal("8.00")
        with transaction.atomic():
            order = Order(
                channel_id=channel_id,
                number=f"{self.serial:08d}",
                customer_id=cust_id,
                placed_at=placed,
                state=state,
                shipping_address_id=address_id,
                shipping_fee=fee,
                paid_total=total + fee,
                paid_at=t["paid"],
                shipped_at=t["shipped"],
                delivered_at=t.get("delivered"),
                created_at=placed,
            )
            order.save()
            for sku, qty in items:
                name, price = catalog[sku]
                OrderLine.objects.create(order=order, sku=sku, name=name, quantity=qty, unit_price=price, line_total=price * qty)
            Payment.objects.create(
                order=order, method="alipay", reference=f"PAY-{order.number}", amount=total + fee, paid_at=t["paid"]
            )
            ship = Shipment.objects.create(
                order=order,
                carrier="sf",
                tracking_number=f"SF{order.number}L",
                shipped_at=t["shipped"],
                delivered_at=t.get("delivered"),
                last_status="delivered" if "delivered" in t else "in_transit",
            )
            prev = "pending_payment"
            for step in ("paid", "shipped", "delivered"):
                if step in t:
                    OrderEvent.objects.create(
                        order=order, from_state=prev, to_state=step, actor=f"channel:{channel_id}", at=t[step]
                    )
                    prev = step
            scans = [("picked_up", t["shipped"]), ("in_transit", t["shipped"] + timedelta(hours=9))]
            if "delivered" in t:
                scans.append(("delivered", t["delivered"]))
            TrackingEvent.objects.bulk_create(
                [
                    TrackingEvent(
                        carrier="sf",
                        tracking_number=ship.tracking_number,
                        status=st,
                        occurred_at=at,
                        shipment=ship,
                        location="Hangzhou",
                    )
                    for st, at in scans
                ]
            )
        return order

    @staticmethod
    def _sku_within(limit: Decimal, prefer: str) -> str:
        """`prefer` if it costs at most `limit`, else the dearest catalogue item that does."""
        prices = {sku: Decimal(price) for sku, _name, price in CATALOG}
        if prices[prefer] <= limit:
            return prefer
        return max((sku for sku in prices if prices[sku] <= limit), key=prices.get, default=min(prices, key=prices.get))

    @staticmethod
    def _sku_above(limit: Decimal) -> str:
        """The cheapest catalogue item priced above `limit` (else the dearest)."""
        by_price = sorted(CATALOG, key=lambda item: Decimal(item[2]))
        return next((sku for sku, _name, price in by_price if Decimal(price) > limit), by_price[-1][0])

    # --- output ---------------------------------------------------------------------------------

    def _summary(self) -> None:
        states = dict(RefundRequest.objects.values_list("state").annotate(n=Count("pk")).order_by())
        payouts = dict(Payout.objects.values_list("state").annotate(n=Count("pk")).order_by())
        self.stdout.write(
            f"Loaded: {Order.objects.count()} orders, {Customer.objects.count()} customers, "
            f"{RefundRequest.objects.count()} refund requests."
        )
        self.stdout.write("  requests by state: " + ", ".join(f"{k} {v}" for k, v in sorted(states.items())))
        self.stdout.write("  payouts by state:  " + ", ".join(f"{k} {v}" for k, v in sorted(payouts.items())))

    def _print_secrets(self, seed: int | None) -> None:
        """The logins and keys made now. Only hashes are kept, so this is the one time they show."""
        if seed is None:
            self.stdout.write("Staff logins (random passwords, shown only now: keep them):")
        else:
            self.stdout.write(f"Staff logins (from --seed {seed}: the same for every install seeded with it):")
        for username, password, role in self.logins:
            shown = password or "(existed already: password unchanged)"
            self.stdout.write(f"  {username:<10} {shown:<20} {role or 'superuser'}")
        for what, key in self.keys:
            self.stdout.write(f"  {what}: {key}")
