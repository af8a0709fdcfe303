"""The policy dry run: what a changed policy would have decided, before it is saved."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from refunds.models import Reason, RefundPolicy
from refunds.rules import policy_for
from refunds.selectors_policy import policy_dry_run
from tests.factories import OrderFactory, RefundRequestFactory

pytestmark = pytest.mark.django_db


def req(amount, *, days=2, reason="size_fit", score=0):
    o = OrderFactory(lines=[("SKU-1", 1, Decimal(amount))])
    return RefundRequestFactory(order=o, reason=reason, risk_score=score, created_at=timezone.now() - timedelta(days=days))


def rows(result):
    return {r.label: (r.live_count, r.live_amount, r.proposed_count, r.proposed_amount) for r in result.rows}


def test_lowering_the_auto_approve_limit_moves_requests_and_money_to_escalate():
    live = policy_for(None)
    req("50.00")
    moved = {req("150.00").number, req("180.00").number}
    req("500.00")  # above both limits: escalated either way
    req("150.00", days=40)  # outside the window
    proposed = RefundPolicy.objects.get(pk=live.pk)
    proposed.auto_approve_limit = Decimal("100.00")
    result = policy_dry_run(live=live, proposed=proposed, days=30)
    assert result.requests == 4 and result.changed_count == 2
    assert rows(result)["approve"] == (3, Decimal("380.00"), 1, Decimal("50.00"))
    assert rows(result)["escalate"] == (1, Decimal("500.00"), 3, Decimal("830.00"))
    assert {c["number"] for c in result.changed} == moved
    # nothing was saved by looking
    assert RefundPolicy.objects.get(pk=live.pk).auto_approve_limit == Decimal("200.00")


def test_raising_the_risk_threshold_approves_what_the_score_escalated():
    live = policy_for(None)
    req("50.00", score=75)
    req("50.00", score=40)
    proposed = RefundPolicy.objects.get(pk=live.pk)
    proposed.risk_threshold = 80
    result = policy_dry_run(live=live, proposed=proposed)
    assert rows(result)["escalate"][0::2] == (1, 0)
    assert rows(result)["approve"][0::2] == (1, 2)


def test_the_dry_run_takes_a_fixed_number_of_queries():
    live = policy_for(None)
    proposed = RefundPolicy.objects.get(pk=live.pk)
    counts = []
    for n in (2, 6):
        for _ in range(n):
            req("30.00")
        with CaptureQueriesContext(connection) as ctx:
            policy_dry_run(live=live, proposed=proposed)
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1] == 2  # requests (with subqueries) + prefetched shipments


def _post_data(policy, **changes):
    data = {
        "name": policy.name,
        "channel": "",
        "return_window_days": policy.return_window_days,
        "dispute_reasons": ["not_as_described", "used_goods", "quality_issue"],
        "auto_approve_limit": policy.auto_approve_limit,
        "keep_it_below": policy.keep_it_below,
        "risk_threshold": policy.risk_threshold,
        "max_refunds_per_order": policy.max_refunds_per_order,
    }
    for flag in [
        "require_paid_enabled",
        "return_window_enabled",
        "dispute_reasons_enabled",
        "auto_approve_limit_enabled",
        "keep_it_enabled",
        "not_received_check_enabled",
        "shipping_delay_alternative_enabled",
        "risk_threshold_enabled",
        "watchlist_enabled",
        "max_refunds_per_order_enabled",
    ]:
        data[flag] = "on"
    data.update(changes)
    return data


def test_the_admin_shows_the_dry_run_first_and_saves_only_on_confirm(client, risk_user):
    policy = policy_for(None)
    req("150.00")
    client.force_login(risk_user)
    url = reverse("admin:refunds_refundpolicy_change", args=[policy.pk])
    response = client.post(url, _post_data(policy, auto_approve_limit="100.00"))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="dry-run"' in body and "Confirm and save" in body and "<code>auto_approve_limit</code>" in body
    assert policy_for(None).auto_approve_limit == Decimal("200.00")  # not saved yet
    response = client.post(url, {**_post_data(policy, auto_approve_limit="100.00"), "_confirm_dry_run": "1"})
    assert response.status_code == 302
    assert policy_for(None).auto_approve_limit == Decimal("100.00")


def test_an_invalid_change_shows_the_form_errors_not_a_dry_run(client, risk_user):
    policy = policy_for(None)
    client.force_login(risk_user)
    response = client.post(reverse("admin:refunds_refundpolicy_change", args=[policy.pk]), _post_data(policy, risk_threshold="x"))
    assert response.status_code == 200 and 'id="dry-run"' not in response.content.decode()


def test_dispute_reasons_are_ticked_from_the_reasons_and_saved_in_their_order(client, risk_user):
    policy = policy_for(None)
    client.force_login(risk_user)
    url = reverse("admin:refunds_refundpolicy_change", args=[policy.pk])
    form = client.get(url).content.decode()
    assert 'type="checkbox" name="dispute_reasons" value="damaged"' in form
    assert form.count('name="dispute_reasons"') == len(Reason.values)
    dry_run = client.post(url, _post_data(policy, dispute_reasons=["used_goods", "damaged"])).content.decode()
    assert "<code>dispute_reasons</code>" in dry_run
    assert '<input type="hidden" name="dispute_reasons" value="used_goods">' in dry_run
    assert '<input type="hidden" name="dispute_reasons" value="damaged">' in dry_run
    assert policy_for(None).dispute_reasons == ["not_as_described", "used_goods", "quality_issue"]  # not saved yet
    response = client.post(url, {**_post_data(policy, dispute_reasons=["used_goods", "damaged"]), "_confirm_dry_run": "1"})
    assert response.status_code == 302
    assert policy_for(None).dispute_reasons == ["damaged", "used_goods"]


@pytest.mark.parametrize(
    ("reasons", "error"),
    [
        (["damagd"], "Select a valid choice. damagd is not one of the available choices."),
        ([], "Tick at least one reason, or switch this rule off."),
    ],
)
def test_a_wrong_or_empty_set_of_dispute_reasons_is_refused_and_nothing_saved(client, risk_user, reasons, error):
    policy = policy_for(None)
    client.force_login(risk_user)
    url = reverse("admin:refunds_refundpolicy_change", args=[policy.pk])
    response = client.post(url, {**_post_data(policy, dispute_reasons=reasons), "_confirm_dry_run": "1"})
    assert response.status_code == 200
    assert error in response.content.decode()
    assert policy_for(None).dispute_reasons == ["not_as_described", "used_goods", "quality_issue"]


def test_a_policy_with_no_reasons_stored_shows_the_ones_the_engine_applies(client, risk_user):
    policy = policy_for(None)
    RefundPolicy.objects.filter(pk=policy.pk).update(dispute_reasons=[])
    client.force_login(risk_user)
    form = client.get(reverse("admin:refunds_refundpolicy_change", args=[policy.pk])).content.decode()
    for reason in ("not_as_described", "used_goods", "quality_issue"):
        assert f'value="{reason}" id="id_dispute_reasons_' in form
        assert f'name="dispute_reasons" value="{reason}" id="id_dispute_reasons_{Reason.values.index(reason)}" checked' in form
    assert 'value="damaged" id="id_dispute_reasons_2" checked' not in form


def test_support_cannot_change_the_policy(client, support_user):
    policy = policy_for(None)
    client.force_login(support_user)
    response = client.post(reverse("admin:refunds_refundpolicy_change", args=[policy.pk]), _post_data(policy))
    assert response.status_code == 403


@pytest.mark.parametrize("role,status", [("risk", 200), ("support", 403), ("finance", 403), ("warehouse", 403)])
def test_policy_screens_for_each_role(client, role, status):
    from tests.factories import UserFactory

    policy = policy_for(None)
    client.force_login(UserFactory(role=role))
    assert client.get(reverse("admin:refunds_refundpolicy_changelist"), {"q": "default"}).status_code == status
    assert client.get(reverse("admin:refunds_refundpolicy_change", args=[policy.pk])).status_code == status


def test_policy_changelist_query_count_is_pinned(client, risk_user):
    from tests.factories import ChannelFactory

    policy_for(None)
    client.force_login(risk_user)
    url = reverse("admin:refunds_refundpolicy_changelist")
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for _ in range(4):
        RefundPolicy.objects.create(channel=ChannelFactory(), name="p")
    with CaptureQueriesContext(connection) as many:
        client.get(url)
    assert len(few.captured_queries) == len(many.captured_queries)
