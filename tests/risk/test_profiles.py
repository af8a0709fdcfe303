"""Each profile feature, built with factories and checked to the exact value."""

from decimal import Decimal

import pytest

from risk import profiles
from risk.models import RiskProfile
from tests.factories import AddressFactory, CustomerFactory
from tests.risk.helpers import days_ago, move_address, order, request, sent_back

pytestmark = pytest.mark.django_db


def profile_of(customer, *, scope="one"):
    profiles.recompute(customer_ids=[customer.pk] if scope == "one" else None)
    return RiskProfile.objects.get(customer=customer)


@pytest.mark.parametrize("scope", ["one", "all"])
def test_refund_rate_counts_orders_requests_and_money_in_the_window(scope):
    # given 8 orders in 90 days (one older), 7 with a request, 3 of them with money back
    c = CustomerFactory()
    orders = [order(c, days=5 + i, price="100.00") for i in range(8)]
    order(c, days=120, price="100.00")
    for o in orders[:7]:
        request(o, days=2)
    for o in orders[:3]:
        sent_back(o, 1)
    p = profile_of(c, scope=scope)
    assert (p.orders_90d, p.refunded_orders_90d, p.requests_90d) == (8, 7, 7)
    assert p.paid_amount_90d == Decimal("800.00")
    assert p.refund_amount_90d == Decimal("300.00")


def test_requests_outside_the_window_and_withdrawn_ones_do_not_count_as_refunded_orders():
    c = CustomerFactory()
    a, b = order(c, days=100), order(c, days=5)
    request(a, days=95)
    request(b, days=1, state="withdrawn")
    p = profile_of(c)
    assert (p.orders_90d, p.refunded_orders_90d, p.requests_90d, p.requests_total) == (1, 0, 1, 2)


def test_buy_many_refund_most_needs_three_units_and_seventy_percent_back():
    c = CustomerFactory()
    sent_back(order(c, units=10), 7)  # 70 % of 10: counts
    sent_back(order(c, units=10), 6)  # 60 %: bulk but not mostly returned
    sent_back(order(c, units=2), 2)  # 2 units: not a bulk order at all
    p = profile_of(c)
    assert (p.bulk_orders, p.bulk_orders_mostly_returned) == (2, 1)


def test_units_held_by_an_open_request_count_as_coming_back():
    from orders.models import OrderLine

    c = CustomerFactory()
    o = order(c, units=4)
    OrderLine.objects.filter(order=o).update(held_quantity=3, held_amount=Decimal("150.00"))
    assert profile_of(c).bulk_orders_mostly_returned == 1


def test_address_churn_counts_distinct_addresses_and_changes_in_30_days():
    c = CustomerFactory()
    home = AddressFactory(customer=c, line1="1 Home St")
    order(c, days=2, address=home)
    order(c, days=3, address=home)
    o = order(c, days=4, address=AddressFactory(customer=c, line1="2 Work St"))
    order(c, days=40, address=AddressFactory(customer=c, line1="3 Old St"))  # outside the window
    move_address(o, c, days=1, line1="4 New St")
    move_address(o, c, days=45, line1="5 Ancient St")  # outside the window
    p = profile_of(c)
    # the changed order now ships to "4 New St": home, new → 2 distinct in 30 days
    assert (p.distinct_addresses_30d, p.address_changes_30d) == (2, 1)


def test_velocity_counts_requests_in_24_hours_and_7_days():
    c = CustomerFactory()
    for hours in (1, 5, 23, 30, 24 * 6, 24 * 8):
        request(order(c, days=10), hours=hours)
    p = profile_of(c)
    assert (p.requests_24h, p.requests_7d, p.requests_total) == (3, 5, 6)


def test_reason_shares_count_not_received_and_dispute_reasons():
    c = CustomerFactory()
    for reason in ["not_received", "not_received", "used_goods", "quality_issue", "size_fit"]:
        request(order(c), reason=reason)
    p = profile_of(c)
    assert (p.requests_total, p.not_received_requests, p.dispute_requests) == (5, 2, 2)


def test_account_age_first_order_and_first_refund():
    c = CustomerFactory(created_at=days_ago(20))
    first = order(c, days=15)
    order(c, days=5)
    request(first, days=14)
    request(first, days=3)
    p = profile_of(c)
    assert p.account_created_at == c.created_at
    assert p.first_order_at == first.placed_at
    assert abs((p.first_refund_at - days_ago(14)).total_seconds()) < 5


def test_shared_phone_counts_the_other_accounts_with_the_same_phone():
    a = CustomerFactory(phone="+8613800000001")
    CustomerFactory(phone="+8613800000001")
    CustomerFactory(phone="+8613800000001")
    CustomerFactory(phone="")
    CustomerFactory(phone="")  # blank phones are not "shared"
    assert profile_of(a, scope="all").shared_phone_accounts == 2
    assert RiskProfile.objects.filter(customer__phone="").values_list("shared_phone_accounts", flat=True).distinct().get() == 0


def test_shared_address_counts_other_accounts_behind_the_same_fingerprint():
    a, b, c = CustomerFactory(), CustomerFactory(), CustomerFactory()
    AddressFactory(customer=a, line1="9 Same Road")
    AddressFactory(customer=a, line1="9  same road")  # the same address typed twice: still one account
    AddressFactory(customer=b, line1="9 Same Road")
    AddressFactory(customer=c, line1="10 Other Road")
    assert profile_of(a).shared_address_accounts == 1
    assert profile_of(c).shared_address_accounts == 0


def test_confirmed_abuse_counts_abusive_verdicts_only():
    c = CustomerFactory()
    request(order(c), verdict="abusive", state="rejected")
    request(order(c), verdict="legitimate", state="refunded")
    assert profile_of(c).abusive_verdicts == 1


def test_a_customer_without_history_gets_a_zero_profile():
    p = profile_of(CustomerFactory())
    assert (p.orders_90d, p.requests_total, p.shared_phone_accounts, p.first_order_at) == (0, 0, 0, None)


def test_incremental_update_touches_only_the_scope_and_agrees_with_the_full_recompute():
    a, b = CustomerFactory(), CustomerFactory()
    request(order(a), hours=1)
    profiles.recompute()
    request(order(b), hours=1)
    request(order(a), hours=2)
    profiles.recompute(customer_ids=[a.pk])
    assert RiskProfile.objects.get(customer=a).requests_24h == 2
    assert RiskProfile.objects.get(customer=b).requests_24h == 0  # not in scope: unchanged
    profiles.recompute()
    assert RiskProfile.objects.get(customer=b).requests_24h == 1


def test_linked_customers_are_the_customer_and_accounts_sharing_phone_or_address():
    a = CustomerFactory(phone="+8613900000001")
    b = CustomerFactory(phone="+8613900000001")
    c = CustomerFactory()
    AddressFactory(customer=a, line1="1 Shared Lane")
    AddressFactory(customer=c, line1="1 Shared Lane")
    CustomerFactory()
    assert profiles.linked_customers(a.pk) == sorted([a.pk, b.pk, c.pk])
