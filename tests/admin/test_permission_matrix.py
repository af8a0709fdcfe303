"""Every role against every page and button of the support and warehouse screens.

Allowed → it works; not allowed → the server refuses (403) and nothing changes, whatever
the page showed. The matrix is spec/roles.md.
"""

import pytest
from django.urls import reverse

from refunds.models import RefundEvent, RefundRequest, ReturnParcel
from tests.admin.conftest import ROLES, awaiting_return_request, escalated_request

pytestmark = pytest.mark.django_db

State = RefundRequest.State

# page → roles that may open it
PAGES = {
    "index": ROLES,
    "request_changelist": ["support", "finance", "risk", "admin"],
    "request_change": ["support", "finance", "risk", "admin"],
    "evidence": ["support", "finance", "risk", "admin"],
    "create_for_customer": ["support", "admin"],
    "parcel_changelist": ["support", "warehouse", "admin"],
    "parcel_change": ["support", "warehouse", "admin"],
    "scan": ["warehouse", "admin"],
    "inspect": ["warehouse", "admin"],
    "order_changelist": ["support", "finance", "risk", "admin"],
    "order_change": ["support", "finance", "risk", "admin"],
    "customer_changelist": ["support", "finance", "risk", "admin"],
    "customer_change": ["support", "finance", "risk", "admin"],
    "channel_changelist": ["admin"],
    "channel_change": ["admin"],
}


def _url(page, refund):
    parcel = getattr(refund, "return_parcel", None)
    return {
        "index": lambda: reverse("admin:index"),
        "request_changelist": lambda: reverse("admin:refunds_refundrequest_changelist"),
        "request_change": lambda: reverse("admin:refunds_refundrequest_change", args=[refund.pk]),
        "evidence": lambda: reverse("admin:refunds_refundrequest_evidence", args=[refund.pk]),
        "create_for_customer": lambda: reverse("admin:refunds_refundrequest_create") + f"?order={refund.order.number}",
        "parcel_changelist": lambda: reverse("admin:refunds_returnparcel_changelist"),
        "parcel_change": lambda: reverse("admin:refunds_returnparcel_change", args=[parcel.pk]),
        "scan": lambda: reverse("admin:refunds_returnparcel_scan"),
        "inspect": lambda: reverse("admin:refunds_returnparcel_inspect", args=[refund.pk]),
        "order_changelist": lambda: reverse("admin:orders_order_changelist"),
        "order_change": lambda: reverse("admin:orders_order_change", args=[refund.order_id]),
        "customer_changelist": lambda: reverse("admin:orders_customer_changelist"),
        "customer_change": lambda: reverse("admin:orders_customer_change", args=[refund.customer_id]),
        "channel_changelist": lambda: reverse("admin:orders_channel_changelist"),
        "channel_change": lambda: reverse("admin:orders_channel_change", args=[refund.channel_id]),
    }[page]()


@pytest.mark.parametrize("role", ROLES)
def test_every_page_is_open_to_its_roles_and_refused_to_the_others(client, role_user, role):
    refund = awaiting_return_request()
    client.force_login(role_user(role))
    for page, allowed in PAGES.items():
        response = client.get(_url(page, refund))
        expected = 200 if role in allowed else 403
        assert response.status_code == expected, f"{role} {page}: {response.status_code}"


def _snapshot(refund):
    refund.refresh_from_db()
    return refund.state, refund.verdict, RefundEvent.objects.filter(request=refund).count()


ACTION_POSTS = {
    "approve": {"approve-note": "looks fine"},
    "reject": {"reject-reason": "The photos show the item as described."},
    "ask": {"ask-question": "Could you send a photo of the label?"},
    "offer": {"offer-kind": "replacement", "offer-description": "We send you a new one."},
}
EXPECTED_STATE = {
    "approve": State.AWAITING_RETURN,
    "reject": State.REJECTED,
    "ask": State.AWAITING_CUSTOMER,
    "offer": State.AWAITING_CUSTOMER,
}
REVIEWERS = ["support", "admin"]


@pytest.mark.parametrize("action", list(ACTION_POSTS))
@pytest.mark.parametrize("role", ROLES)
def test_review_buttons_work_for_reviewers_only(client, role_user, role, action):
    refund = escalated_request()
    before = _snapshot(refund)
    client.force_login(role_user(role))
    url = reverse("admin:refunds_refundrequest_act", args=[refund.pk, action])
    response = client.post(url, ACTION_POSTS[action])
    if role in REVIEWERS:
        assert response.status_code == 302
        state, _verdict, events = _snapshot(refund)
        assert state == EXPECTED_STATE[action]
        assert events > before[2]
    else:
        assert response.status_code == 403
        assert _snapshot(refund) == before


@pytest.mark.parametrize("role", ROLES)
def test_verdict_button_is_for_support_risk_and_admin(client, role_user, role):
    refund = escalated_request()
    from config.actors import Actor
    from refunds import services
    from tests.factories import UserFactory

    services.refund_reject(refund_id=refund.pk, actor=Actor.for_user(UserFactory(role="support")), reason="no")
    before = _snapshot(refund)
    client.force_login(role_user(role))
    response = client.post(
        reverse("admin:refunds_refundrequest_act", args=[refund.pk, "verdict"]), {"verdict-verdict": "abusive"}
    )
    if role in ("support", "risk", "admin"):
        assert response.status_code == 302
        assert _snapshot(refund)[1] == "abusive"
    else:
        assert response.status_code == 403
        assert _snapshot(refund) == before


@pytest.mark.parametrize("role", ROLES)
def test_scan_and_inspect_are_for_the_warehouse_only(client, role_user, role):
    refund = awaiting_return_request()
    code = refund.return_parcel.return_code
    before = _snapshot(refund)
    client.force_login(role_user(role))
    scan = client.post(reverse("admin:refunds_returnparcel_scan"), {"code": code})
    inspect = client.post(
        reverse("admin:refunds_returnparcel_inspect", args=[refund.pk]), {"grade": "unopened", "disposition": "restock"}
    )
    if role in ("warehouse", "admin"):
        assert scan.status_code == 302 and inspect.status_code == 302
        assert _snapshot(refund)[0] == State.READY_FOR_PAYOUT
    else:
        assert scan.status_code == 403 and inspect.status_code == 403
        assert _snapshot(refund) == before
        assert ReturnParcel.objects.get(pk=refund.return_parcel.pk).received_at is None


@pytest.mark.parametrize("role", ROLES)
def test_create_for_customer_is_for_support_and_admin(client, role_user, role):
    from tests.factories import OrderFactory

    order = OrderFactory(lines=[("SKU-1", 2, "30.00")])
    client.force_login(role_user(role))
    response = client.post(
        reverse("admin:refunds_refundrequest_create"),
        {
            "order_id": order.pk,
            "idempotency_key": "abc",
            "sku": ["SKU-1"],
            "qty-SKU-1": "1",
            "reason": "size_fit",
            "kind": "return_and_refund",
            "refund_method": "original_payment",
        },
    )
    if role in ("support", "admin"):
        assert response.status_code == 302
        assert RefundRequest.objects.filter(order=order).count() == 1
    else:
        assert response.status_code == 403
        assert not RefundRequest.objects.filter(order=order).exists()


@pytest.mark.parametrize("role", ROLES)
def test_button_urls_refuse_get(client, role_user, role):
    refund = escalated_request()
    client.force_login(role_user(role))
    response = client.get(reverse("admin:refunds_refundrequest_act", args=[refund.pk, "approve"]))
    assert response.status_code == 405
    assert _snapshot(refund)[0] == State.UNDER_REVIEW


SEARCHES = {
    "request_changelist": ("admin:refunds_refundrequest_changelist", lambda r: r.number),
    "parcel_changelist": ("admin:refunds_returnparcel_changelist", lambda r: r.return_parcel.return_code),
    "order_changelist": ("admin:orders_order_changelist", lambda r: r.order.number),
    "customer_changelist": ("admin:orders_customer_changelist", lambda r: r.customer.external_id),
    "channel_changelist": ("admin:orders_channel_changelist", lambda r: r.channel.name),
}


@pytest.mark.parametrize("role", ROLES)
def test_every_model_admin_search_finds_the_row_for_allowed_roles(client, role_user, role):
    refund = awaiting_return_request()
    client.force_login(role_user(role))
    for page, (name, term) in SEARCHES.items():
        params = {"q": term(refund)}
        if page in ("request_changelist", "parcel_changelist"):
            params["queue"] = "all"
        response = client.get(reverse(name), params)
        if role in PAGES[page]:
            assert response.status_code == 200, page
            assert len(response.context["cl"].result_list) == 1, page
        else:
            assert response.status_code == 403, page
