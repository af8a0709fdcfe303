"""Erasure (PIPL art. 47, GDPR art. 17): a customer's personal data replaced everywhere it is
stored, the money records kept with their amounts.

The customer belongs to the order book, so the service is here; every app above that copies
personal data (refund requests and their evidence, notifications, the watch list) registers
an `ErasurePart` from its `AppConfig.ready`, and the service calls each of them in the
same transaction before it scrubs its own tables — imports stay one way. A part may also
name the rows that must be finished first (an open refund request) and the rows that count
as the customer's activity, which the retention sweeper reads.

Nothing is deleted: orders, payments, requests, payouts, wallet entries and coupons keep
their rows and amounts, so every total and every reconciliation stays what it was; the
names, numbers, addresses and words in them become `ERASED`.
"""

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from config import sweeps
from config.actors import SYSTEM, Actor
from config.errors import ActionForbidden, NotAllowed, NotFound
from orders.models import Address, AddressChange, Customer, CustomerMessage, Order, OrderEvent

PERM_ANONYMIZE = "orders.anonymize_customer"
ERASED = "[erased]"
SWEEPER = "orders: anonymize inactive customers"


class CustomerErasureRefused(NotAllowed):
    """The customer still has work that needs their data (an open request, a parcel on its way)."""


@dataclass(frozen=True)
class ErasureSubject:
    """The customer being erased and the personal values they had, read before anything changed."""

    customer_id: int
    name: str
    phone: str
    email: str
    external_id: str
    # The other values copied into texts: address lines, the names and phones on addresses.
    extra: tuple[str, ...] = ()
    # What they wrote to us, to find it in snapshots that copied it (the evidence reports).
    message_bodies: tuple[str, ...] = ()

    @property
    def values(self) -> list[str]:
        """Every personal value to look for in free text, longest first (so a phone goes
        before its national form, a full name before a part of it)."""
        national = self.phone[3:] if self.phone.startswith("+86") else ""
        found = {v.strip() for v in (self.name, self.phone, national, self.email, *self.extra) if v and len(v.strip()) >= 2}
        return sorted(found, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        """`text` with each of the customer's personal values replaced by ERASED."""
        if not text or not self.values:
            return text
        pattern = re.compile("|".join(re.escape(v) for v in self.values), re.IGNORECASE)
        return pattern.sub(ERASED, text)

    def scrub_json(self, value):
        """`scrub` through every string of a JSON value (keys stay)."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, list):
            return [self.scrub_json(v) for v in value]
        if isinstance(value, dict):
            return {k: self.scrub_json(v) for k, v in value.items()}
        return value


@dataclass(frozen=True)
class ErasurePart:
    """What one app does for an erasure.

    `erase(subject)` replaces the personal data the app stores (it runs inside the
    erasure's transaction, before the order book's own tables change). `open_work()` is a
    queryset of a model with a `customer` foreign key: rows of it block an erasure until
    they are finished (each shown by its `__str__`). `activity(since)` is such a queryset
    of rows that show the customer active since then (the retention sweeper skips them).
    """

    name: str
    erase: Callable[[ErasureSubject], None]
    open_work: Callable[[], QuerySet] | None = None
    activity: Callable[[datetime], QuerySet] | None = None


_PARTS: dict[str, ErasurePart] = {}


def register_part(part: ErasurePart) -> None:
    """Add an app's part (idempotent: `ready()` may run more than once in tests)."""
    _PARTS[part.name] = part


def _own_part() -> ErasurePart:
    return ErasurePart(
        name="orders",
        erase=_erase_order_book,
        # Goods paid or on their way still need the address they go to.
        open_work=lambda: Order.objects.filter(state__in=[Order.State.PAID, Order.State.SHIPPED]),
        activity=lambda since: Order.objects.filter(Q(updated_at__gte=since) | Q(placed_at__gte=since)),
    )


def _parts() -> list[ErasurePart]:
    # The apps above first: they read what the order book still holds (a phone shared with
    # other accounts, the messages a snapshot copied) before it is replaced.
    return [*_PARTS.values(), _own_part()]


# --- the service ---------------------------------------------------------------------------


def customer_anonymize(*, customer_id: int, actor: Actor) -> Customer:
    """Replace the customer's personal data in every table that holds it; amounts stay.

    Admins (and the system: the retention sweeper, `manage.py customer_anonymize`) only.
    Refused, changing nothing, while the customer has open work. Erasing twice is a no-op.
    """
    if not (actor.is_system or actor.has_perm(PERM_ANONYMIZE)):
        raise ActionForbidden(_("%(actor)s may not erase customers' personal data.") % {"actor": actor.label})
    with transaction.atomic():
        customer = Customer.objects.select_for_update().filter(pk=customer_id).first()
        if customer is None:
            raise NotFound(_("There is no customer %(id)s.") % {"id": customer_id})
        if customer.anonymized_at is not None:
            return customer
        # The orders' locks are the ones a new refund request takes first: none can slip in
        # between the check below and the commit.
        list(Order.objects.select_for_update().filter(customer_id=customer_id).order_by("pk").values_list("pk", flat=True))
        blocking = [str(row) for part in _parts() if part.open_work for row in part.open_work().filter(customer_id=customer_id)]
        if blocking:
            raise CustomerErasureRefused(
                _("Customer %(id)s still has open work (%(items)s); finish it before erasing their data.")
                % {"id": customer_id, "items": ", ".join(blocking[:10])}
            )
        subject = _subject(customer)
        for part in _parts():
            part.erase(subject)
        customer.refresh_from_db()
    return customer


def _subject(customer: Customer) -> ErasureSubject:
    addresses = list(Address.objects.filter(customer=customer).values_list("name", "phone", "line1"))
    return ErasureSubject(
        customer_id=customer.pk,
        name=customer.name,
        phone=customer.phone,
        email=customer.email,
        external_id=customer.external_id,
        extra=tuple(v for row in addresses for v in row if v),
        message_bodies=tuple(CustomerMessage.objects.filter(customer=customer).values_list("body", flat=True)),
    )


def _erase_order_book(subject: ErasureSubject) -> None:
    now = timezone.now()
    pk = subject.customer_id
    Customer.objects.filter(pk=pk).update(
        name="", phone="", email="", external_id=f"erased-{pk}", sms_opt_out=True, anonymized_at=now
    )
    for address in Address.objects.filter(customer_id=pk).only("pk"):
        # A fingerprint of its own: the address no longer links this account to others.
        fingerprint = hashlib.sha256(f"erased:{address.pk}".encode()).hexdigest()
        Address.objects.filter(pk=address.pk).update(
            name="", phone="", line1=ERASED, city="", postcode="", fingerprint=fingerprint
        )
    CustomerMessage.objects.filter(customer_id=pk).update(body=ERASED)
    scrub_rows(subject, OrderEvent.objects.filter(order__customer_id=pk).exclude(note=""), ["note"])
    # The admin's history names the object as it was ("Zhao Wenjing (3:C-17)").
    customer_type = ContentType.objects.get_for_model(Customer)
    anonymous = str(Customer.objects.get(pk=pk))
    LogEntry.objects.filter(content_type=customer_type, object_id=str(pk)).update(object_repr=anonymous[:200])
    scrub_rows(subject, LogEntry.objects.filter(content_type=customer_type, object_id=str(pk)), ["change_message"])


def scrub_rows(subject: ErasureSubject, queryset: QuerySet, fields: Iterable[str], *, json_fields: Iterable[str] = ()) -> int:
    """Scrub the text (and JSON) columns of each row; writes only the rows that change."""
    fields, json_fields = list(fields), list(json_fields)
    changed = 0
    for row in queryset.only("pk", *fields, *json_fields):
        values = {f: subject.scrub(getattr(row, f)) for f in fields}
        values |= {f: subject.scrub_json(getattr(row, f)) for f in json_fields}
        if any(values[f] != getattr(row, f) for f in values):
            type(row).objects.filter(pk=row.pk).update(**values)
            changed += 1
    return changed


# --- retention -----------------------------------------------------------------------------


def inactive_customers(*, now=None) -> QuerySet:
    """Customers not erased yet with nothing of theirs touched for `CUSTOMER_RETENTION_DAYS`
    and no open work, oldest first. None when the setting is 0 (retention off)."""
    days = settings.CUSTOMER_RETENTION_DAYS
    if not days:
        return Customer.objects.none()
    since = (now or timezone.now()) - timedelta(days=days)
    rows = Customer.objects.filter(anonymized_at__isnull=True, created_at__lt=since)
    rows = rows.exclude(Exists(CustomerMessage.objects.filter(customer_id=OuterRef("pk"), sent_at__gte=since)))
    rows = rows.exclude(Exists(AddressChange.objects.filter(customer_id=OuterRef("pk"), changed_at__gte=since)))
    for part in _parts():
        if part.activity:
            rows = rows.exclude(Exists(part.activity(since).filter(customer_id=OuterRef("pk"))))
        if part.open_work:
            rows = rows.exclude(Exists(part.open_work().filter(customer_id=OuterRef("pk"))))
    return rows.order_by("pk")


def customers_anonymize_inactive(*, now=None, limit: int = 500) -> sweeps.SweepReport:
    """The retention sweeper: erase each inactive customer on its own (`config.sweeps`), so
    one that fails is recorded and, after repeated failures, parked for a person."""
    ids = list(sweeps.without_parked(SWEEPER, inactive_customers(now=now)).values_list("pk", flat=True)[:limit])
    return sweeps.sweep(SWEEPER, ids, lambda pk: customer_anonymize(customer_id=pk, actor=SYSTEM))
