"""Money reads the same on every screen: two decimals, grouped thousands, its currency; and a
staff user is named, not linked to the user admin finance may not open."""

from decimal import Decimal

import pytest
from django.urls import reverse

from config.actors import Actor
from config.money import money
from refunds import services
from refunds.models import Payout, PayoutBatch
from tests.admin.conftest import confirm_approval
from tests.admin.test_finance import bulk_payouts, payout_through_services
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db

USER_ADMIN = "/admin/auth/user/"


@pytest.fixture
def fin(client, finance_user):
    client.force_login(finance_user)
    return client


def test_money_is_two_decimals_grouped_with_its_currency_and_never_a_float():
    assert money(Decimal("4290.80000000000"), "CNY") == "4,290.80 CNY"
    assert money(1133, "CNY") == "1,133.00 CNY"
    assert money("0.5", "USD") == "0.50 USD"
    assert money(Decimal("-2.005")) == "-2.01"
    assert money(None, "CNY") == "—"
    with pytest.raises(TypeError):
        money(1.5, "CNY")


def test_the_batch_list_shows_each_total_as_money(fin, finance_user, settings):
    settings.REFUND_DESK = {**settings.REFUND_DESK, "PAYOUT_FOUR_EYES_ABOVE": "100000.00"}
    ps = bulk_payouts(2, amount="2145.40")
    services.payout_approve_bulk(payout_ids=[p.pk for p in ps], actor=Actor.for_user(finance_user))
    mixed = bulk_payouts(2, amount="1.00")
    Payout.objects.filter(pk=mixed[1].pk).update(currency="USD")
    services.payout_approve_bulk(payout_ids=[p.pk for p in mixed], actor=Actor.for_user(finance_user))
    assert PayoutBatch.objects.count() == 2

    page = fin.get(reverse("admin:refunds_payoutbatch_changelist")).content.decode()

    assert "4,290.80 CNY" in page and "4290.8000" not in page
    assert "several currencies" in page  # a sum of CNY and USD is no amount
    assert f'href="{USER_ADMIN}' not in page


def test_the_queue_the_payout_page_and_the_requests_show_money_with_its_currency(fin, finance_user, admin_user):
    payout = payout_through_services(price="1133")
    queue = fin.get(reverse("admin:refunds_payout_changelist")).content.decode()
    assert "1,133.00 CNY" in queue
    change = fin.get(reverse("admin:refunds_payout_change", args=[payout.pk])).content.decode()
    assert "1,133.00 CNY" in change

    fin.force_login(admin_user)  # the requests' and the orders' screens
    request_page = fin.get(reverse("admin:refunds_refundrequest_change", args=[payout.request_id])).content.decode()
    assert "1,133.00 CNY" in request_page
    order = fin.get(reverse("admin:orders_order_change", args=[payout.request.order_id])).content.decode()
    assert "1,133.00 CNY" in order
    orders = fin.get(reverse("admin:orders_order_changelist")).content.decode()
    assert "1,133.00 CNY" in orders


def test_approved_by_shows_the_name_without_a_link_to_the_user_admin(client, finance_user, finance_user2, settings):
    settings.REFUND_DESK = {**settings.REFUND_DESK, "PAYOUT_FOUR_EYES_ABOVE": "100.00"}
    finance_user2.first_name, finance_user2.last_name = "Mei", "Chen"
    finance_user2.save(update_fields=["first_name", "last_name"])
    payout = payout_through_services(price="150.00")
    services.payout_approve(payout_id=payout.pk, actor=Actor.for_user(finance_user))
    client.force_login(finance_user2)
    confirm_approval(client, client.get(reverse("admin:refunds_payout_approve", args=[payout.pk])))
    payout.refresh_from_db()
    assert payout.approved_by == finance_user2 and payout.first_approved_by == finance_user

    client.force_login(finance_user)
    page = client.get(reverse("admin:refunds_payout_change", args=[payout.pk])).content.decode()

    assert "Mei Chen" in page and finance_user.get_username() in page
    assert USER_ADMIN not in page
    assert client.get(f"{USER_ADMIN}{finance_user2.pk}/change/").status_code == 403  # why it is not a link


def test_an_orders_lines_show_money_with_the_orders_currency(client, admin_user):
    order = OrderFactory(lines=[("SKU-1", 2, Decimal("1500.00")), ("SKU-2", 1, Decimal("7.5"))])
    client.force_login(admin_user)
    page = client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    assert "1,500.00 CNY" in page and "3,000.00 CNY" in page and "7.50 CNY" in page
