"""Watch-list patterns, the entries they make, and who may change the list."""

from datetime import timedelta

import pytest
from django.utils import timezone

from config.actors import Actor
from notifications.models import Notification
from refunds.errors import ActionForbidden, RefundValidationError
from risk import services
from risk.models import RiskSettings, WatchlistEntry
from tests.factories import AddressFactory, CustomerFactory
from tests.risk.helpers import move_address, order, request, sent_back

pytestmark = pytest.mark.django_db
R = WatchlistEntry.Reason


def recompute_and_entries(customer):
    services.recompute_customer(customer_id=customer.pk)
    return {e.reason: e for e in WatchlistEntry.objects.filter(customer=customer)}


def test_buy_many_refund_most_adds_an_automatic_entry_with_evidence_and_expiry(django_capture_on_commit_callbacks):
    c = CustomerFactory()
    for _ in range(2):
        sent_back(order(c, units=5), 4)
    order(c, units=5)
    with django_capture_on_commit_callbacks(execute=True):
        entries = recompute_and_entries(c)
    entry = entries[R.BUY_MANY_REFUND_MOST]
    assert entry.source == "auto" and entry.added_by is None
    assert entry.evidence == {"bulk_orders": 3, "mostly_returned": 2}
    assert entry.expires_at - entry.added_at == timedelta(days=RiskSettings.current().watchlist_days)
    assert services.is_watchlisted(customer=c)
    note = Notification.objects.get(event="watchlist_added")
    assert note.recipient == "risk" and note.context["reason"] == R.BUY_MANY_REFUND_MOST


def test_honest_bulk_buyer_who_keeps_most_is_not_listed():
    c = CustomerFactory()
    for _ in range(3):
        sent_back(order(c, units=5), 1)  # one size swapped per order
    assert recompute_and_entries(c) == {}
    assert not services.is_watchlisted(customer=c)
    assert not Notification.objects.exists()


def test_frequent_address_changes_add_an_entry():
    c = CustomerFactory()
    o = order(c, days=5, address=AddressFactory(customer=c))
    for i in range(3):
        move_address(o, c, days=i + 1)
    entry = recompute_and_entries(c)[R.ADDRESS_CHURN]
    assert entry.evidence == {"distinct_addresses": 1, "address_changes": 3, "days": 30}


def test_moving_house_once_is_not_churn():
    c = CustomerFactory()
    o = order(c, days=5, address=AddressFactory(customer=c))
    move_address(o, c, days=1)
    order(c, days=2, address=AddressFactory(customer=c))
    assert recompute_and_entries(c) == {}


def test_one_phone_behind_three_accounts_lists_all_of_them():
    a, b, c = (CustomerFactory(phone="+8613700000009") for _ in range(3))
    entry = recompute_and_entries(a)[R.SHARED_IDENTIFIERS]
    assert entry.evidence == {"phone_shared_with": 2, "address_shared_with": 0}
    # the linked accounts were recomputed with it, so they are listed too
    assert set(WatchlistEntry.objects.filter(reason=R.SHARED_IDENTIFIERS).values_list("customer_id", flat=True)) == {
        a.pk,
        b.pk,
        c.pk,
    }


def test_a_household_of_two_sharing_an_address_is_not_listed():
    a, b = CustomerFactory(), CustomerFactory()
    AddressFactory(customer=a, line1="8 Family Road")
    AddressFactory(customer=b, line1="8 Family Road")
    assert recompute_and_entries(a) == {}


def test_a_burst_of_requests_adds_an_entry():
    c = CustomerFactory()
    for h in (1, 2, 3):
        request(order(c), hours=h)
    assert recompute_and_entries(c)[R.BURST].evidence == {"requests_24h": 3, "requests_7d": 3}


def test_two_requests_in_a_day_are_not_a_burst():
    c = CustomerFactory()
    for h in (1, 30):
        request(order(c), hours=h)
    request(order(c), hours=2)
    request(order(c), days=10)
    # 2 in 24 h, 3 in 7 days: under both thresholds
    assert recompute_and_entries(c) == {}


def test_a_recompute_does_not_duplicate_a_live_entry_but_renews_an_expired_one():
    c = CustomerFactory()
    for h in (1, 2, 3):
        request(order(c), hours=h)
    recompute_and_entries(c)
    recompute_and_entries(c)
    assert WatchlistEntry.objects.filter(customer=c).count() == 1
    WatchlistEntry.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert not services.is_watchlisted(customer=c)
    recompute_and_entries(c)
    assert WatchlistEntry.objects.filter(customer=c).count() == 2
    assert services.is_watchlisted(customer=c)


def test_full_recompute_lists_every_customer_whose_pattern_fires():
    bursty, calm = CustomerFactory(), CustomerFactory()
    for h in (1, 2, 3):
        request(order(bursty), hours=h)
    request(order(calm), hours=1)
    services.recompute_all()
    assert list(WatchlistEntry.objects.values_list("customer_id", "reason")) == [(bursty.pk, R.BURST)]


def test_risk_adds_and_removes_by_hand_with_a_note(risk_user):
    actor = Actor.for_user(risk_user)
    c = CustomerFactory()
    entry = services.watchlist_add(customer_id=c.pk, actor=actor, note="chargeback at the bank")
    assert (entry.source, entry.reason, entry.added_by) == ("manual", R.MANUAL, risk_user)
    assert services.is_watchlisted(customer=c)
    services.watchlist_remove(entry_id=entry.pk, actor=actor, note="bank cleared it")
    entry.refresh_from_db()
    assert entry.removed_by == risk_user and "bank cleared it" in entry.note
    assert not services.is_watchlisted(customer=c)


def test_a_note_is_required(risk_user):
    with pytest.raises(RefundValidationError):
        services.watchlist_add(customer_id=CustomerFactory().pk, actor=Actor.for_user(risk_user), note=" ")
    assert not WatchlistEntry.objects.exists()


@pytest.mark.parametrize("role", ["support", "finance"])
def test_support_and_finance_may_not_change_the_list(role):
    from tests.factories import UserFactory

    actor = Actor.for_user(UserFactory(role=role))
    with pytest.raises(ActionForbidden):
        services.watchlist_add(customer_id=CustomerFactory().pk, actor=actor, note="x")
    assert not WatchlistEntry.objects.exists()


def test_settings_changes_are_logged_field_by_field(risk_user):
    from config.audit.models import AuditEntry

    services.risk_settings_update(actor=Actor.for_user(risk_user), changes={"weight_velocity": 25, "burst_24h": 3})
    assert RiskSettings.current().weight_velocity == 25
    entry = AuditEntry.objects.get(
        content_type__model="risksettings", action=AuditEntry.Action.UPDATE
    )  # burst_24h did not move: not in it
    assert (entry.changes_dict, entry.actor) == ({"weight_velocity": ["30", "25"]}, risk_user)


def test_support_may_not_change_settings(support_user):
    from config.audit.models import AuditEntry

    with pytest.raises(ActionForbidden):
        services.risk_settings_update(actor=Actor.for_user(support_user), changes={"weight_velocity": 0})
    assert RiskSettings.current().weight_velocity == 30
    assert not AuditEntry.objects.filter(content_type__model="risksettings", action=AuditEntry.Action.UPDATE).exists()
