"""Personal data per role: finance and admins see it, support and risk masked, the warehouse not at all."""

import pytest
from django.urls import reverse

from orders.masking import mask_email, mask_phone, mask_reference
from orders.models import ChannelKey
from tests.factories import OrderFactory


def test_mask_phone_keeps_country_prefix_and_last_four():
    assert mask_phone("+8613812340000") == "+86 138****0000"
    assert mask_phone("13812340000") == "138****0000"
    assert mask_phone("") == ""
    assert mask_phone("123") == "***"


def test_mask_reference_and_email():
    assert mask_reference("PAY-ORD-001234") == "PAY-****1234"
    assert mask_reference("abc") == "***"
    assert mask_email("li.wei@example.com") == "l***@example.com"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "role, phone_shown, masked_shown",
    [("finance", True, False), ("admin", True, False), ("support", False, True), ("risk", False, True)],
)
def test_order_and_customer_pages_mask_per_role(client, role_user, role, phone_shown, masked_shown):
    order = OrderFactory(customer__phone="+8613812345678")
    client.force_login(role_user(role))
    pages = [
        client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode(),
        client.get(reverse("admin:orders_customer_change", args=[order.customer_id])).content.decode(),
        client.get(reverse("admin:orders_customer_changelist")).content.decode(),
    ]
    for body in pages:
        assert ("+8613812345678" in body) is phone_shown
        assert ("+86 138****5678" in body) is masked_shown
    order_page = pages[0]
    assert (f"PAY-{order.number}" in order_page) is phone_shown
    assert ("PAY-****" in order_page) is masked_shown


@pytest.mark.django_db
def test_channel_admin_never_shows_the_key_hash(client, role_user):
    order = OrderFactory()
    ChannelKey.objects.create(channel=order.channel, slot=1, key_hash="f" * 64, key_prefix="rdk_ab12")
    client.force_login(role_user("admin"))
    body = client.get(reverse("admin:orders_channel_change", args=[order.channel_id])).content.decode()
    assert "rdk_ab12" in body and "f" * 64 not in body
