"""Raising a money limit waits for a second admin, through the admin screens: the raise is
saved as a pending change, the old limit keeps deciding meanwhile, the proposer can't approve
it, another admin applies it (and the audit log says old → new, by whom, on whose
proposal), a rejection discards it, and a lowering applies at once."""

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from config.actors import Actor
from config.audit.models import PendingChange
from refunds import services
from refunds.models import Payout, PayoutSettings, RefundPolicy, RefundRequest
from refunds.rules import policy_for
from tests.admin.test_audit import _settled_rows, entries_for, form_data, policy_form  # noqa: F401 (autouse fixture)
from tests.factories import ChannelFactory, OrderFactory, UserFactory
from tests.refunds import journeys

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin2(db):
    return UserFactory(username="admin-2", is_superuser=True)


def decide(amount: str) -> RefundRequest:
    refund_id = journeys.evaluated(OrderFactory(lines=[("SKU-1", 1, amount)]), kind="refund_only")
    return RefundRequest.objects.get(pk=refund_id)


def pending_url(change, action=""):
    name = f"audit_pendingchange_{action}" if action else "audit_pendingchange_change"
    return reverse(f"admin:{name}", args=[change.pk])


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_a_raise_of_the_auto_approve_limit_waits_and_the_old_limit_keeps_deciding(client, risk_user, admin_user):
    policy = policy_for(None)
    client.force_login(risk_user)

    response = policy_form(client, policy, auto_approve_limit="500.00", return_window_days="40")

    assert response.status_code == 302
    assert any("Raising Auto-approve limit needs a second admin" in m and "PC-" in m for m in messages_of(response))
    policy.refresh_from_db()
    assert (policy.auto_approve_limit, policy.return_window_days) == (Decimal("200.00"), 40)  # the rest applied
    change = PendingChange.objects.get()
    assert (change.state, change.proposed_by, change.changes) == (
        "pending",
        risk_user,
        {"auto_approve_limit": ["200.00", "500.00"]},
    )
    assert not any("auto_approve_limit" in e.changes_dict for e in entries_for(RefundPolicy))
    # A decision taken meanwhile uses the old limit.
    meanwhile = decide("300.00")
    assert meanwhile.state == RefundRequest.State.UNDER_REVIEW
    assert meanwhile.escalation_reason == "300.00 is above the auto-approve limit 200.00"

    # The risk role proposes; it can't approve.
    page = client.get(pending_url(change)).content.decode()
    assert "Approve and apply" not in page and "Withdraw" in page
    client.post(pending_url(change, "approve"))
    change.refresh_from_db()
    assert change.state == "pending" and policy_for(None).auto_approve_limit == Decimal("200.00")

    # Another admin sees it waiting, and approves it.
    client.force_login(admin_user)
    waiting = client.get(reverse("admin:audit_pendingchange_changelist"), {"state": "pending"})
    assert list(waiting.context["cl"].result_list) == [change]
    page = client.get(pending_url(change)).content.decode()
    assert "Approve and apply" in page and 'form="decide-approve"' in page and 'form="decide-reject"' in page
    response = client.post(pending_url(change, "approve"), {"note": "seasonal sale"})

    assert response.status_code == 302
    change.refresh_from_db()
    assert (change.state, change.decided_by, change.decision_note) == ("approved", admin_user, "seasonal sale")
    assert policy_for(None).auto_approve_limit == Decimal("500.00")
    applied = entries_for(RefundPolicy).filter(changes__has_key="auto_approve_limit").get()
    assert applied.actor == admin_user
    assert applied.changes_dict == {"auto_approve_limit": ["200.00", "500.00"]}
    assert applied.additional_data == {"pending_change": change.pk, "proposed_by": risk_user.username, "note": "seasonal sale"}
    log = client.get(reverse("admin:audit_auditentry_changelist")).content.decode()
    assert "auto-approve limit: 200.00 → 500.00" in log
    # From now on the new limit decides.
    assert decide("300.00").state != RefundRequest.State.UNDER_REVIEW


def test_an_admin_cannot_approve_their_own_raise_of_the_four_eyes_threshold(client, admin_user, admin2, finance, finance_user2):
    RefundPolicy.objects.update(auto_approve_limit=Decimal("5000.00"))  # let 1,500 reach a payout
    row = PayoutSettings.current()
    client.force_login(admin_user)
    url = reverse("admin:refunds_payoutsettings_change", args=[row.pk])

    response = client.post(url, form_data(client.get(url), four_eyes_above="2000.00", change_note="fewer double checks"))

    assert response.status_code == 302
    change = PendingChange.objects.get()
    assert change.changes == {"four_eyes_above": [None, "2000.00"]}
    assert services.four_eyes_limit() == Decimal("1000.00")
    page = client.get(pending_url(change)).content.decode()
    assert "Approve and apply" not in page
    assert "You proposed this change: a second, different admin must approve it." in page
    response = client.post(pending_url(change, "approve"))
    assert "You proposed this change: a second, different admin must approve it." in messages_of(response)
    change.refresh_from_db()
    assert change.state == "pending" and services.four_eyes_limit() == Decimal("1000.00")

    # Meanwhile a payout of 1,500 still needs two finance approvers.
    payout = Payout.objects.get(request=decide("1500.00"))
    services.payout_approve(payout_id=payout.pk, actor=finance)
    payout.refresh_from_db()
    assert payout.state == Payout.State.PENDING_APPROVAL and payout.first_approved_by is not None

    client.force_login(admin2)
    client.post(pending_url(change, "approve"))
    change.refresh_from_db()
    assert (change.state, change.decided_by) == ("approved", admin2)
    assert services.four_eyes_limit() == Decimal("2000.00")
    applied = entries_for(PayoutSettings).get()
    assert (applied.actor, applied.changes_dict) == (admin2, {"four_eyes_above": ["None", "2000.00"]})
    # Now one approver is enough for 1,500.
    after = Payout.objects.get(request=decide("1500.00"))
    services.payout_approve(payout_id=after.pk, actor=finance)
    after.refresh_from_db()
    assert after.state == Payout.State.APPROVED


def test_a_rejected_raise_is_discarded(client, risk_user, admin_user):
    client.force_login(risk_user)
    policy_form(client, policy_for(None), keep_it_below="80.00")
    change = PendingChange.objects.get()

    client.force_login(admin_user)
    response = client.post(pending_url(change, "reject"), {"note": "too generous"})

    assert response.status_code == 302
    change.refresh_from_db()
    assert (change.state, change.decided_by, change.decision_note) == ("rejected", admin_user, "too generous")
    assert policy_for(None).keep_it_below == Decimal("20.00")
    assert not entries_for(RefundPolicy).filter(changes__has_key="keep_it_below").exists()
    # Nothing is left to approve.
    client.force_login(UserFactory(username="admin-3", is_superuser=True))
    response = client.post(pending_url(change, "approve"))
    assert any("already" in m for m in messages_of(response))
    assert policy_for(None).keep_it_below == Decimal("20.00")


def test_the_dry_run_says_a_raise_will_wait(client, risk_user):
    client.force_login(risk_user)
    url = reverse("admin:refunds_refundpolicy_change", args=[policy_for(None).pk])
    page = client.post(url, form_data(client.get(url), auto_approve_limit="900.00")).content.decode()
    assert 'id="raise-needs-approval"' in page and "Auto-approve limit" in page
    page = client.post(url, form_data(client.get(url), auto_approve_limit="90.00")).content.decode()
    assert 'id="dry-run"' in page and 'id="raise-needs-approval"' not in page
    assert not PendingChange.objects.exists()


def test_a_lowering_applies_at_once(client, risk_user, admin_user):
    client.force_login(risk_user)
    policy_form(client, policy_for(None), auto_approve_limit="100.00", keep_it_below="10.00")
    assert (policy_for(None).auto_approve_limit, policy_for(None).keep_it_below) == (Decimal("100.00"), Decimal("10.00"))
    client.force_login(admin_user)
    row = PayoutSettings.current()
    url = reverse("admin:refunds_payoutsettings_change", args=[row.pk])
    client.post(url, form_data(client.get(url), four_eyes_above="400.00"))
    assert services.four_eyes_limit() == Decimal("400.00")
    assert not PendingChange.objects.exists()


def test_switching_the_auto_approve_limit_off_is_a_raise(client, risk_user):
    client.force_login(risk_user)
    policy_form(client, policy_for(None), auto_approve_limit_enabled=False)
    assert policy_for(None).auto_approve_limit_enabled is True
    assert PendingChange.objects.get().changes == {"auto_approve_limit_enabled": [True, False]}


def test_a_new_channel_policy_above_the_governing_limit_waits(client, admin_user):
    channel = ChannelFactory(name="market")
    client.force_login(admin_user)
    url = reverse("admin:refunds_refundpolicy_add")
    data = form_data(client.get(url), name="market rules", channel=str(channel.pk), auto_approve_limit="900.00")
    response = client.post(url, {**data, "_confirm_dry_run": "1"})
    assert response.status_code == 302
    created = RefundPolicy.objects.get(channel=channel)
    assert created.auto_approve_limit == Decimal("200.00")  # the default policy's, until approved
    assert PendingChange.objects.get().changes == {"auto_approve_limit": ["200.00", "900.00"]}


def test_a_second_raise_while_one_waits_is_refused_and_changes_nothing(client, risk_user):
    client.force_login(risk_user)
    policy_form(client, policy_for(None), auto_approve_limit="300.00")
    response = policy_form(client, policy_for(None), auto_approve_limit="400.00", return_window_days="50")
    assert any("already waits for approval" in m for m in messages_of(response))
    assert PendingChange.objects.get().changes == {"auto_approve_limit": ["200.00", "300.00"]}
    assert policy_for(None).return_window_days == 30


def test_the_proposer_may_withdraw_and_others_without_the_right_may_not_decide(client, risk_user):
    client.force_login(risk_user)
    policy_form(client, policy_for(None), auto_approve_limit="300.00")
    change = PendingChange.objects.get()
    other_risk = UserFactory(username="risk-2", role="risk")
    client.force_login(other_risk)
    client.post(pending_url(change, "reject"))
    client.post(pending_url(change, "approve"))
    change.refresh_from_db()
    assert change.state == "pending"
    client.force_login(risk_user)
    client.post(pending_url(change, "reject"))
    change.refresh_from_db()
    assert (change.state, change.decided_by) == ("rejected", risk_user)
    assert policy_for(None).auto_approve_limit == Decimal("200.00")


def test_the_database_refuses_an_approval_by_the_proposer(admin_user):
    change = services.payout_settings_update(four_eyes_above=Decimal("5000.00"), actor=Actor.for_user(admin_user)).pending
    with pytest.raises(IntegrityError), transaction.atomic():
        PendingChange.objects.filter(pk=change.pk).update(state="approved", decided_by=admin_user, decided_at=timezone.now())


def test_get_on_a_decision_url_changes_nothing(client, admin_user, admin2):
    change = services.payout_settings_update(four_eyes_above=Decimal("5000.00"), actor=Actor.for_user(admin_user)).pending
    client.force_login(admin2)
    assert client.get(pending_url(change, "approve")).status_code == 405
    change.refresh_from_db()
    assert change.state == "pending"


def test_the_home_page_shows_other_admins_the_raises_waiting(client, admin_user, admin2):
    services.payout_settings_update(four_eyes_above=Decimal("5000.00"), actor=Actor.for_user(admin_user))

    def figure(user) -> str:
        client.force_login(user)
        home = client.get(reverse("admin:index")).content.decode()
        after = home[home.index("Money-limit raises waiting for your approval") :]
        return after[after.index('<span class="n">') + len('<span class="n">') :].split("<", 1)[0]

    assert figure(admin2) == "1"
    assert figure(admin_user) == "0"  # the proposer's own raise is not theirs to approve


def test_approving_a_raise_of_a_deleted_policy_is_refused_with_a_sentence(client, admin_user, admin2):
    channel = ChannelFactory(name="gone")
    policy = RefundPolicy.objects.create(channel=channel, name="gone rules")
    change = services.policy_save(
        policy=_set(policy, auto_approve_limit=Decimal("900.00")), actor=Actor.for_user(admin_user)
    ).pending
    policy.delete()
    client.force_login(admin2)
    response = client.post(pending_url(change, "approve"))
    assert response.status_code == 302
    assert "gone rules no longer exists; reject this change." in messages_of(response)
    change.refresh_from_db()
    assert change.state == "pending"


def _set(obj, **values):
    for k, v in values.items():
        setattr(obj, k, v)
    return obj
