"""Only the roles that see phones search by them: a masked role learns nothing a search
could tell back (issue 18: a full number recovered in four searches)."""

import pytest
from django.urls import reverse

from risk.models import RiskProfile, WatchlistEntry
from tests.factories import CustomerFactory

PHONE = "+8613912345678"
# The whole number, its national form, and prefixes that run into the masked digits.
REVEALING = [PHONE, "13912345678", "+86139123", "1391234", "139123456", "2345678"]


@pytest.fixture
def listed(db):
    customer = CustomerFactory(name="Qian Duoduo", external_id="EXT-77", phone=PHONE)
    other = CustomerFactory(name="Sun Li", external_id="EXT-78", phone="+8613700001111")
    for c in (customer, other):
        RiskProfile.objects.create(customer=c)
        WatchlistEntry.objects.create(customer=c, reason="manual", source="manual", note="by hand")
    return customer


PAGES = ["admin:risk_riskprofile_changelist", "admin:risk_watchlistentry_changelist"]


def _found(client, page, term, customer) -> bool:
    response = client.get(reverse(page), {"q": term})
    assert response.status_code == 200
    rows = response.context["cl"].result_list
    return any(getattr(row, "customer_id", row.pk) == customer.pk for row in rows)


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("role", ["support", "risk"])
def test_a_masked_role_cannot_find_a_customer_by_phone_or_a_prefix_of_it(client, role_user, listed, role, page):
    client.force_login(role_user(role))
    for term in REVEALING:
        assert not _found(client, page, term, listed), term
    # ... while the name still finds them, and the last four (shown to them) too.
    assert _found(client, page, "Qian Duoduo", listed)
    assert _found(client, page, "5678", listed)
    assert not _found(client, page, "1234", listed)  # four digits, but not the last four


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("role", ["finance", "admin"])
def test_a_role_that_sees_phones_finds_a_customer_by_phone(client, role_user, listed, role, page):
    client.force_login(role_user(role))
    assert _found(client, page, PHONE, listed)
    assert _found(client, page, "13912345678", listed)


@pytest.mark.parametrize("role", ["support", "risk"])
def test_a_masked_role_cannot_filter_by_phone_or_email_in_the_url(client, role_user, listed, role):
    client.force_login(role_user(role))
    for page, lookup in [
        ("admin:orders_customer_changelist", "phone__startswith"),
        ("admin:orders_customer_changelist", "phone"),
        ("admin:orders_customer_changelist", "email__startswith"),
        ("admin:risk_riskprofile_changelist", "customer__phone__startswith"),
        ("admin:orders_order_changelist", "customer__phone__startswith"),
        ("admin:orders_order_changelist", "payment__reference__startswith"),
    ]:
        response = client.get(reverse(page), {lookup: "139"})
        assert response.status_code == 400, (page, lookup)


def test_the_customer_list_finds_by_exact_phone_only_for_who_sees_it(client, role_user, listed):
    page = "admin:orders_customer_changelist"
    client.force_login(role_user("finance"))
    assert _found(client, page, PHONE, listed)
    assert client.get(reverse(page), {"phone__startswith": "139"}).status_code == 200
    client.force_login(role_user("support"))
    assert not _found(client, page, PHONE, listed)
    assert _found(client, page, "EXT-77", listed)
