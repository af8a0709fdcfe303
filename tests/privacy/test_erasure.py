"""Erasure: after `customer_anonymize` none of the customer's personal data is left in any
column of any table — found by reading the database's own catalogue, not a list of fields —
another customer's data is as it was, and every amount adds up to what it did."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from config.actors import SYSTEM, Actor
from config.errors import ActionForbidden, NotAllowed
from notifications.models import Notification
from orders import services as order_services
from orders.models import Customer, CustomerMessage
from orders.services_erasure import ERASED, customer_anonymize, customers_anonymize_inactive, inactive_customers
from refunds import services
from refunds.models import RefundRequest, WalletEntry
from risk import services as risk_services
from risk.models import WatchlistEntry
from tests.factories import ChannelFactory, UserFactory

TEXT_TYPES = {"CharField", "TextField", "JSONField", "EmailField", "SlugField"}
MONEY_TYPES = {"DecimalField"}


def _columns(kinds: set[str]) -> list[tuple[str, str]]:
    """(table, column) of every column of these Django types in the database, by introspection."""
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            for col in connection.introspection.get_table_description(cursor, table):
                try:
                    kind = connection.introspection.get_field_type(col.type_code, col)
                except KeyError:
                    continue
                if kind in kinds:
                    found.append((table, col.name))
    return found


def rows_containing(needle: str) -> dict[str, int]:
    """Every text, char and JSON column of every table holding `needle` (case-insensitive,
    also in the \\u-escaped form JSON may store it in) → how many rows."""
    qn = connection.ops.quote_name
    forms = {needle, json.dumps(needle)[1:-1]}
    hits = {}
    with connection.cursor() as cursor:
        for table, column in _columns(TEXT_TYPES):
            for form in forms:
                cursor.execute(
                    f"SELECT COUNT(*) FROM {qn(table)} WHERE UPPER(CAST({qn(column)} AS TEXT)) LIKE UPPER(%s)",  # noqa: S608
                    [f"%{form}%"],
                )
                n = cursor.fetchone()[0]
                if n:
                    hits[f"{table}.{column}"] = hits.get(f"{table}.{column}", 0) + n
    return hits


def money_sums() -> dict[str, Decimal]:
    qn = connection.ops.quote_name
    sums = {}
    with connection.cursor() as cursor:
        for table, column in _columns(MONEY_TYPES):
            cursor.execute(f"SELECT SUM({qn(column)}) FROM {qn(table)}")  # noqa: S608
            sums[f"{table}.{column}"] = cursor.fetchone()[0]
    return sums


_numbers = iter(range(1, 10**6))


class Person:
    def __init__(self, tag: str, name: str, phone: str, email: str):
        self.tag, self.name, self.phone, self.email = tag, name, phone, email
        self.external_id = f"SHOP-{tag}"
        self.line1 = f"{tag} Secret Garden Lane"
        self.line1_new = f"{tag} Hidden Court"

    @property
    def needles(self) -> list[str]:
        national = self.phone.removeprefix("+86")
        return [self.name, self.phone, national, self.email, self.external_id, self.line1, self.line1_new]


def _upsert(channel, person: Person, *, number: str, line1: str, paid: str = "59.90"):
    placed = timezone.now() - timedelta(days=10)
    data = {
        "placed_at": placed,
        "currency": "CNY",
        "customer": {"external_id": person.external_id, "name": person.name, "phone": person.phone, "email": person.email},
        "shipping_address": {
            "name": person.name,
            "phone": person.phone,
            "line1": line1,
            "city": "Shanghai",
            "postcode": "200001",
        },
        "lines": [{"sku": "SKU-1", "name": "Linen shirt", "quantity": 1, "unit_price": Decimal(paid)}],
        "payment": {"method": "alipay", "reference": f"PAY-{number}", "amount": Decimal(paid), "paid_at": placed},
        "shipments": [
            {
                "carrier": "sf",
                "tracking_number": f"SF{number}",
                "shipped_at": placed + timedelta(days=1),
                "delivered_at": placed + timedelta(days=3),
            }
        ],
    }
    order, _ = order_services.order_upsert(channel=channel, actor=Actor.for_channel(channel), number=number, data=data)
    return order


def _submit(order, person: Person, *, reason: str, kind="return_and_refund", method="original_payment") -> int:
    refund, _ = services.refund_submit(
        actor=Actor.for_channel(order.channel),
        channel=order.channel,
        idempotency_key=f"erase-{next(_numbers)}",
        order_number=order.number,
        kind=kind,
        reason=reason,
        refund_method=method,
        customer_note=f"{person.name} here, write to {person.email}",
    )
    services.refund_evaluate(refund_id=refund.pk, actor=SYSTEM)
    return refund.pk


def history(person: Person, staff) -> Customer:
    """A customer with everything the product stores about one, made through the services:
    orders with addresses and an address change, messages, a request refunded with money
    paid out, one asked about, answered and rejected, a watch-list entry and a request
    evaluated while listed, customer and staff notifications, the admin's history."""
    channel = ChannelFactory(name=f"store-{person.tag}")
    actor = Actor.for_channel(channel)
    first = _upsert(channel, person, number=f"{person.tag}-1", line1=person.line1)
    # the address changes: an AddressChange, and a second address
    _upsert(channel, person, number=f"{person.tag}-1", line1=person.line1_new)
    second = _upsert(channel, person, number=f"{person.tag}-2", line1=person.line1_new, paid="120.00")
    third = _upsert(channel, person, number=f"{person.tag}-3", line1=person.line1_new, paid="35.50")
    fourth = _upsert(channel, person, number=f"{person.tag}-4", line1=person.line1_new, paid="18.20")
    order_services.customer_message_record(
        channel=channel,
        order_number=first.number,
        direction="in",
        body=f"Hi, this is {person.name}; call me on {person.phone} or mail {person.email}",
    )

    # refunded: returned, inspected, paid out
    paid_id = _submit(first, person, reason="size_fit")
    assert RefundRequest.objects.get(pk=paid_id).state == RefundRequest.State.AWAITING_RETURN
    services.return_ship(refund_id=paid_id, actor=actor, carrier="sf", tracking_number=f"RT{person.tag}")
    code = RefundRequest.objects.get(pk=paid_id).return_parcel.return_code
    services.return_receive(code=code, actor=staff["warehouse"])
    services.return_inspect(
        refund_id=paid_id, actor=staff["warehouse"], grade="unopened", disposition="restock", note=f"label says {person.name}"
    )
    payout = RefundRequest.objects.get(pk=paid_id).payouts.get()
    services.payout_approve(payout_id=payout.pk, actor=staff["finance"])
    services.payout_execute(payout_id=payout.pk)
    assert RefundRequest.objects.get(pk=paid_id).state == RefundRequest.State.REFUNDED

    # refunded as store credit: a wallet entry
    credit_id = _submit(fourth, person, reason="size_fit", kind="refund_only", method="store_credit")
    credit = RefundRequest.objects.get(pk=credit_id)
    if credit.state == RefundRequest.State.UNDER_REVIEW:
        services.refund_approve(refund_id=credit_id, actor=staff["support"])
    payout = RefundRequest.objects.get(pk=credit_id).payouts.get()
    services.payout_approve(payout_id=payout.pk, actor=staff["finance"])
    services.payout_execute(payout_id=payout.pk)
    assert RefundRequest.objects.get(pk=credit_id).state == RefundRequest.State.REFUNDED
    assert WalletEntry.objects.filter(customer_id=credit.customer_id, amount=Decimal("18.20")).exists()

    # asked, answered, rejected
    asked_id = _submit(second, person, reason="not_as_described")
    services.refund_ask_customer(refund_id=asked_id, actor=staff["support"], question=f"{person.name}, a photo please?")
    services.refund_resume(refund_id=asked_id, actor=actor, message=f"Sent it from {person.phone}")
    services.refund_reject(refund_id=asked_id, actor=staff["support"], reason=f"Photos from {person.name} show wear")

    # on the watch list, then a request evaluated while listed (the risk inbox names them)
    customer = Customer.objects.get(channel=channel, external_id=person.external_id)
    risk_services.watchlist_add(
        customer_id=customer.pk, actor=staff["risk"], note=f"{person.name} phoned from {person.phone} to complain"
    )
    listed_id = _submit(third, person, reason="not_as_described")
    services.refund_reject(refund_id=listed_id, actor=staff["support"], reason="duplicate of an earlier request")

    LogEntry.objects.log_actions(
        user_id=staff["admin"].user.pk, queryset=[customer], action_flag=CHANGE, change_message=f"checked {person.email}"
    )
    return customer


@pytest.fixture
def staff(db):
    from notifications.models import MessageTemplate

    # Made by a migration; a database a transactional test flushed has lost it.
    MessageTemplate.objects.get_or_create(
        event="watchlist_hit",
        channel="staff",
        language="en",
        defaults={"subject": "{{ refund_number }}", "body": "{{ refund_number }} is from {{ customer_name }} (watch list)"},
    )
    return {
        "support": Actor.for_user(UserFactory(username="erase-support", role="support")),
        "warehouse": Actor.for_user(UserFactory(username="erase-warehouse", role="warehouse")),
        "finance": Actor.for_user(UserFactory(username="erase-finance", role="finance")),
        "risk": Actor.for_user(UserFactory(username="erase-risk", role="risk")),
        "admin": Actor.for_user(UserFactory(username="erase-admin", is_superuser=True)),
    }


ZHAO = Person("ZW", "Zhao Wenjing", "+8613912345678", "zhao.wenjing@example.org")
QIAN = Person("QD", "Qian Duoduo", "+8613700002222", "qian.duoduo@example.net")


@pytest.fixture
def two_customers(staff):
    return history(ZHAO, staff), history(QIAN, staff)


def test_after_erasure_no_table_holds_the_customers_personal_data(two_customers, staff):
    zhao, qian = two_customers
    # given: the data really is spread over many tables (the scan sees it) ...
    before = {needle: rows_containing(needle) for needle in ZHAO.needles}
    spread = {column for hits in before.values() for column in hits}
    assert {
        "orders_customer.name",
        "orders_address.line1",
        "orders_customermessage.body",
        "notifications_notification.recipient",
        "notifications_notification.body",
        "refunds_refundrequest.evidence",
        "refunds_refundrequest.customer_note",
        "refunds_refundevent.note",
        "risk_watchlistentry.note",
        "django_admin_log.object_repr",
    } <= spread, spread
    sums = money_sums()
    qian_before = {needle: rows_containing(needle) for needle in QIAN.needles}

    # when
    customer_anonymize(customer_id=zhao.pk, actor=staff["admin"])

    # then: nothing of Zhao anywhere
    for needle in ZHAO.needles:
        assert rows_containing(needle) == {}, needle
    # ... Qian's data exactly where it was
    assert {needle: rows_containing(needle) for needle in QIAN.needles} == qian_before
    # ... and every amount of every table adds up to what it did
    assert money_sums() == sums
    zhao.refresh_from_db()
    assert zhao.anonymized_at is not None and zhao.orders.count() == 4
    assert WalletEntry.objects.get(customer=zhao).amount == Decimal("18.20")
    paid = RefundRequest.objects.filter(customer=zhao, state="refunded").values_list("amount_paid", flat=True)
    assert sorted(paid) == [Decimal("18.20"), Decimal("59.90")]
    assert set(CustomerMessage.objects.filter(customer=zhao).values_list("body", flat=True)) == {ERASED}
    # nothing more goes out to them
    assert not Notification.objects.filter(refund__customer=zhao, status__in=["pending", "failed"]).exists()
    assert WatchlistEntry.objects.filter(customer=zhao).exists()  # the entry stays, without the name


def test_erasing_twice_changes_nothing_more(two_customers, staff):
    zhao, _ = two_customers
    customer_anonymize(customer_id=zhao.pk, actor=SYSTEM)
    first = Customer.objects.get(pk=zhao.pk).anonymized_at
    customer_anonymize(customer_id=zhao.pk, actor=SYSTEM)
    assert Customer.objects.get(pk=zhao.pk).anonymized_at == first


def test_only_admins_and_the_system_may_erase(two_customers, staff):
    zhao, _ = two_customers
    for role in ("support", "finance", "risk"):
        with pytest.raises(ActionForbidden):
            customer_anonymize(customer_id=zhao.pk, actor=staff[role])
    assert rows_containing(ZHAO.name)


def test_an_open_request_refuses_the_erasure_and_nothing_changes(staff):
    channel = ChannelFactory(name="shop-open")
    order = _upsert(channel, ZHAO, number="OPEN-1", line1=ZHAO.line1)
    refund_id = _submit(order, ZHAO, reason="not_as_described")  # under review
    before = rows_containing(ZHAO.name)
    with pytest.raises(NotAllowed, match=RefundRequest.objects.get(pk=refund_id).number):
        customer_anonymize(customer_id=order.customer_id, actor=staff["admin"])
    assert rows_containing(ZHAO.name) == before
    assert Customer.objects.get(pk=order.customer_id).anonymized_at is None


# --- the admin action ----------------------------------------------------------------------


def test_the_admin_action_asks_then_erases(client, two_customers, staff):
    zhao, qian = two_customers
    client.force_login(staff["admin"].user)
    url = reverse("admin:orders_customer_changelist")
    asked = client.post(url, {"action": "anonymize", "_selected_action": [zhao.pk]})
    assert asked.status_code == 200 and "Yes, erase their personal data" in asked.content.decode()
    assert Customer.objects.get(pk=zhao.pk).anonymized_at is None  # asking changed nothing

    done = client.post(url, {"action": "anonymize", "_selected_action": [zhao.pk], "confirmed": "yes"}, follow=True)
    assert done.status_code == 200
    assert Customer.objects.get(pk=zhao.pk).anonymized_at is not None
    assert Customer.objects.get(pk=qian.pk).anonymized_at is None
    assert rows_containing(ZHAO.email) == {}


@pytest.mark.parametrize("role", ["support", "finance", "risk"])
def test_other_roles_have_no_erase_action(client, two_customers, staff, role):
    zhao, _ = two_customers
    client.force_login(staff[role].user)
    url = reverse("admin:orders_customer_changelist")
    assert "anonymize" not in client.get(url).content.decode()
    client.post(url, {"action": "anonymize", "_selected_action": [zhao.pk], "confirmed": "yes"})
    assert Customer.objects.get(pk=zhao.pk).anonymized_at is None


# --- the management command ----------------------------------------------------------------


def test_the_command_erases_by_id_or_by_channel_id(two_customers, capsys):
    zhao, qian = two_customers
    call_command("customer_anonymize", str(zhao.pk))
    call_command("customer_anonymize", "--channel", "store-QD", "--external-id", QIAN.external_id)
    assert Customer.objects.filter(pk__in=[zhao.pk, qian.pk], anonymized_at__isnull=False).count() == 2
    assert rows_containing(QIAN.phone) == {}


@pytest.mark.parametrize(
    "args, sentence",
    [
        ([], "Name the customers"),
        (["abc"], "Customer ids are whole numbers; abc is not."),
        (["999999"], "There is no customer 999999; nothing was erased."),
        (["--channel", "store-ZW"], "Give --channel and --external-id together."),
        (["--channel", "nowhere", "--external-id", "x"], "Channel 'nowhere' has no customer 'x'."),
    ],
)
def test_the_command_refuses_bad_input_with_a_sentence(two_customers, args, sentence):
    with pytest.raises(CommandError, match=sentence):
        call_command("customer_anonymize", *args)
    assert not Customer.objects.filter(anonymized_at__isnull=False).exists()


def test_the_command_exits_non_zero_on_bad_input(subprocess_env):
    import subprocess
    import sys

    from tests.conftest import BASE_DIR

    result = subprocess.run(
        [sys.executable, "manage.py", "customer_anonymize", "not-a-number"],
        cwd=BASE_DIR,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Customer ids are whole numbers; not-a-number is not." in result.stderr


# --- retention -----------------------------------------------------------------------------


def _age(customer: Customer, days: int) -> None:
    """Time passing: every timestamp of the customer's history moved back `days` days."""
    from django.db.models import F

    from orders.models import AddressChange, Order

    delta = timedelta(days=days)
    Customer.objects.filter(pk=customer.pk).update(created_at=F("created_at") - delta)
    Order.objects.filter(customer=customer).update(placed_at=F("placed_at") - delta)
    # updated_at is auto_now: an update() sets it only when told to
    Order.objects.filter(customer=customer).update(updated_at=timezone.now() - delta)
    CustomerMessage.objects.filter(customer=customer).update(sent_at=F("sent_at") - delta)
    AddressChange.objects.filter(customer=customer).update(changed_at=F("changed_at") - delta)
    RefundRequest.objects.filter(customer=customer).update(updated_at=timezone.now() - delta)


def test_the_retention_sweeper_erases_only_customers_inactive_past_the_setting(two_customers, settings):
    zhao, qian = two_customers
    settings.CUSTOMER_RETENTION_DAYS = 365
    _age(zhao, 400)
    _age(qian, 400)
    # Qian wrote again last week: active
    CustomerMessage.objects.filter(customer=qian).update(sent_at=timezone.now() - timedelta(days=7))
    assert list(inactive_customers()) == [zhao]

    from orders import tasks

    assert tasks.anonymize_inactive_customers() == 1  # the scheduled task: one erased
    assert Customer.objects.get(pk=zhao.pk).anonymized_at is not None
    assert Customer.objects.get(pk=qian.pk).anonymized_at is None
    assert rows_containing(ZHAO.phone) == {}
    assert rows_containing(QIAN.phone)
    assert customers_anonymize_inactive().done == 0  # nothing left to do


def test_a_recent_refund_request_counts_as_activity_and_zero_turns_retention_off(two_customers, settings):
    zhao, _ = two_customers
    settings.CUSTOMER_RETENTION_DAYS = 365
    _age(zhao, 400)
    RefundRequest.objects.filter(customer=zhao).update(updated_at=timezone.now())
    assert zhao not in inactive_customers()
    _age(zhao, 400)
    settings.CUSTOMER_RETENTION_DAYS = 0
    assert customers_anonymize_inactive().done == 0


def test_the_retention_sweeper_is_scheduled_nightly(db):
    from django_q.models import Schedule

    schedule = Schedule.objects.get(func="orders.tasks.anonymize_inactive_customers")
    assert schedule.schedule_type == Schedule.DAILY and schedule.repeats == -1


# --- accounts linked by a phone ------------------------------------------------------------


def test_a_shared_phone_loses_this_customers_words_from_the_others_evidence_and_unlinks_their_risk(
    staff, django_capture_on_commit_callbacks
):
    from risk.models import RiskProfile
    from tests.factories import CustomerFactory, OrderFactory

    phone = "+8613655556666"
    leaving = CustomerFactory(name="Li Leaving", phone=phone)
    staying = CustomerFactory(name="Wu Staying", phone=phone, channel=leaving.channel)
    leaving_order = OrderFactory(customer=leaving, channel=leaving.channel)
    staying_order = OrderFactory(customer=staying, channel=leaving.channel)
    for order, body in [(leaving_order, "words of the leaving customer"), (staying_order, "words of the staying one")]:
        order_services.customer_message_record(channel=order.channel, order_number=order.number, direction="in", body=body)
    # the evidence reads messages by phone: the staying customer's report copies both
    refund_id = _submit(staying_order, Person("WS", "Wu Staying", phone, ""), reason="not_as_described")
    bodies = [m["body"] for m in RefundRequest.objects.get(pk=refund_id).evidence["messages"]]
    assert "words of the leaving customer" in bodies
    risk_services.recompute_customer(customer_id=staying.pk)
    assert RiskProfile.objects.get(customer=staying).shared_phone_accounts == 1

    with django_capture_on_commit_callbacks(execute=True):
        customer_anonymize(customer_id=leaving.pk, actor=SYSTEM)

    assert rows_containing("words of the leaving customer") == {}
    bodies = [m["body"] for m in RefundRequest.objects.get(pk=refund_id).evidence["messages"]]
    assert "words of the staying one" in bodies and ERASED in bodies
    # the erased phone no longer links them (recomputed after commit)
    assert RiskProfile.objects.get(customer=staying).shared_phone_accounts == 0
    assert Customer.objects.get(pk=staying.pk).phone == phone
