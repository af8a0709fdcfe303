"""The staff search page and the lists' search boxes: every kind of term finds its row in
every state, exact matches first, masked phones only by their last four digits, each role
only what it may view, in a fixed number of queries."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from refunds.models import RefundRequest, ReturnParcel
from tests.factories import CustomerFactory, OrderFactory, RefundRequestFactory

State = RefundRequest.State
pytestmark = pytest.mark.django_db


def search(client, term):
    response = client.get(reverse("staff_search"), {"q": term})
    assert response.status_code == 200
    return response.content.decode()


def make_request(state=State.REFUNDED, **order_kwargs):
    order = OrderFactory(**order_kwargs)
    refund = RefundRequestFactory(order=order, state=state)
    parcel = ReturnParcel.objects.create(
        request=refund,
        return_code=f"RC{refund.pk:08d}",
        address="Hangzhou",
        deadline=timezone.now() + timedelta(days=14),
        carrier="yto",
        tracking_number=f"YT{refund.pk:010d}",
    )
    return refund, parcel


def change_url(obj):
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


@pytest.mark.parametrize("state", [State.UNDER_REVIEW, State.REFUNDED, State.REJECTED, State.WITHDRAWN, State.AWAITING_RETURN])
def test_each_kind_of_term_finds_its_row_in_every_state(client, role_user, state):
    customer = CustomerFactory(name="He Min", phone="+8613812345678", email="he.min@example.com")
    refund, parcel = make_request(state, number="00002500", customer=customer, channel=customer.channel)
    client.force_login(role_user("admin"))
    shipment = refund.order.shipments.get()
    for term, expected in [
        (refund.number, change_url(refund)),
        (f"rf{refund.pk}", change_url(refund)),
        ("00002500", change_url(refund.order)),
        ("2500", change_url(refund.order)),
        ("2500", change_url(refund)),
        ("He Min", change_url(customer)),
        ("he mi", change_url(refund)),
        ("+8613812345678", change_url(customer)),
        ("5678", change_url(customer)),
        ("he.min@example.com", change_url(customer)),
        (shipment.tracking_number, change_url(refund.order)),
        (parcel.tracking_number, change_url(parcel)),
        (parcel.return_code, change_url(parcel)),
        (parcel.return_code, change_url(refund)),
    ]:
        assert expected in search(client, term), term


def test_exact_matches_come_first(client, role_user):
    padded, _ = make_request(number="0000777")
    exact, _ = make_request(number="777")
    client.force_login(role_user("admin"))
    body = search(client, "777")
    assert body.index(change_url(exact.order)) < body.index(change_url(padded.order))
    assert body.index(change_url(exact)) < body.index(change_url(padded))


@pytest.mark.parametrize("role", ["support", "risk"])
def test_masked_roles_find_by_last_four_but_never_by_full_phone_or_email(client, role_user, role):
    customer = CustomerFactory(name="Guo Hong", phone="+8613899990001", email="guo@example.com")
    make_request(customer=customer, channel=customer.channel)
    client.force_login(role_user(role))
    assert change_url(customer) not in search(client, "+8613899990001")
    assert change_url(customer) not in search(client, "13899990001")
    assert change_url(customer) not in search(client, "guo@example.com")
    body = search(client, "0001")
    assert change_url(customer) in body
    assert "+8613899990001" not in body and "138****0001" in body


def test_finance_finds_by_full_phone(client, role_user):
    customer = CustomerFactory(name="Guo Hong", phone="+8613899990001")
    client.force_login(role_user("finance"))
    assert change_url(customer) in search(client, "13899990001")


def test_roles_see_only_what_they_may_view(client, role_user):
    refund, parcel = make_request(State.AWAITING_RETURN)
    client.force_login(role_user("warehouse"))
    body = search(client, parcel.return_code)
    assert change_url(parcel) in body
    assert change_url(refund) not in body and change_url(refund.order) not in body
    assert change_url(refund.customer) not in search(client, refund.customer.name)
    assert change_url(refund.order) not in search(client, refund.order.number)
    client.force_login(role_user("support"))
    assert change_url(refund) in search(client, refund.number)


def test_every_staff_page_links_to_the_search(client, role_user):
    client.force_login(role_user("support"))
    body = client.get(reverse("admin:index")).content.decode()
    assert f'href="{reverse("staff_search")}"' in body


def test_query_count_does_not_grow_with_results(client, role_user):
    customer = CustomerFactory(name="Zhang Wei")
    make_request(customer=customer, channel=customer.channel)
    client.force_login(role_user("admin"))
    search(client, "Zhang Wei")

    def count():
        with CaptureQueriesContext(connection) as ctx:
            search(client, "Zhang Wei")
        return len(ctx.captured_queries)

    few = count()
    for _ in range(5):
        make_request(customer=customer, channel=customer.channel)
    assert count() == few <= 12


@pytest.mark.parametrize("role", ["support", "finance"])
def test_request_list_search_reaches_every_state(client, role_user, role):
    refund, _ = make_request(State.REFUNDED, number="00004321")
    queue, _ = make_request(State.UNDER_REVIEW)
    client.force_login(role_user(role))
    url = reverse("admin:refunds_refundrequest_changelist")
    for term in [refund.number, "4321", "00004321", refund.customer.name]:
        body = client.get(url, {"q": term}).content.decode()
        assert change_url(refund) in body, term
        assert change_url(queue) not in body, term
    # Without a term the default stays the queue; a chosen filter still applies to a search.
    assert change_url(refund) not in client.get(url).content.decode()
    assert change_url(refund) not in client.get(url, {"q": refund.number, "queue": "under_review"}).content.decode()


def test_order_and_customer_lists_find_padding_and_names(client, role_user):
    refund, _ = make_request(number="00002500")
    client.force_login(role_user("support"))
    body = client.get(reverse("admin:orders_order_changelist"), {"q": "2500"}).content.decode()
    assert change_url(refund.order) in body
    body = client.get(reverse("admin:orders_customer_changelist"), {"q": refund.customer.name}).content.decode()
    assert change_url(refund.customer) in body
