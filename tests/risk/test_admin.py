"""Risk admin screens for every role, the report, and the settings log through the admin."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from config.actors import Actor
from config.audit.models import AuditEntry
from refunds.models import RefundRequest
from risk import services
from risk.models import RiskProfile, RiskSettings, WatchlistEntry
from risk.selectors import abuse_report
from tests.factories import CustomerFactory, OrderFactory, RefundRequestFactory, UserFactory

pytestmark = pytest.mark.django_db

SCREENS = ["watchlistentry", "risksettings", "riskprofile"]
# what each role may open: risk manages, support and finance read the list and the profiles
ALLOWED = {
    "risk": set(SCREENS),
    "support": {"watchlistentry", "riskprofile"},
    "finance": {"watchlistentry", "riskprofile"},
    "warehouse": set(),
}


@pytest.fixture
def listed(db):
    c = CustomerFactory()
    for _ in range(3):
        RefundRequestFactory(order=OrderFactory(customer=c, channel=c.channel), created_at=timezone.now() - timedelta(hours=1))
    services.recompute_all()
    return WatchlistEntry.objects.get(customer=c)


@pytest.mark.parametrize("role", list(ALLOWED))
@pytest.mark.parametrize("screen", SCREENS)
def test_each_screen_for_each_role(client, role, screen, listed):
    client.force_login(UserFactory(role=role))
    changelist = client.get(reverse(f"admin:risk_{screen}_changelist"), {"q": "x"} if screen != "risksettings" else {})
    assert changelist.status_code == (200 if screen in ALLOWED[role] else 403)
    obj = {
        "watchlistentry": listed,
        "risksettings": RiskSettings.current(),
        "riskprofile": RiskProfile.objects.first(),
    }[screen]
    if obj is not None:
        change = client.get(reverse(f"admin:risk_{screen}_change", args=[obj.pk]))
        assert change.status_code == (200 if screen in ALLOWED[role] else 403)


def test_admin_superuser_sees_every_screen(admin_client, listed):
    for screen in SCREENS:
        assert admin_client.get(reverse(f"admin:risk_{screen}_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:risk_report")).status_code == 200


def test_watchlist_changelist_query_count_is_pinned(client, risk_user, listed):
    client.force_login(risk_user)
    url = reverse("admin:risk_watchlistentry_changelist")
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for _ in range(5):
        services.watchlist_add(customer_id=CustomerFactory().pk, actor=Actor.for_user(risk_user), note="ring")
    with CaptureQueriesContext(connection) as many:
        client.get(url)
    assert len(few.captured_queries) == len(many.captured_queries)


def test_profile_changelist_query_count_is_pinned(client, risk_user, listed):
    client.force_login(risk_user)
    url = reverse("admin:risk_riskprofile_changelist")
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for _ in range(5):
        CustomerFactory()
    services.recompute_all()
    with CaptureQueriesContext(connection) as many:
        client.get(url)
    assert len(few.captured_queries) == len(many.captured_queries)


def test_risk_adds_an_entry_by_hand_in_the_admin(client, risk_user):
    c = CustomerFactory()
    client.force_login(risk_user)
    response = client.post(reverse("admin:risk_watchlistentry_add"), {"customer": c.pk, "note": "chargebacks", "expires_at": ""})
    assert response.status_code == 302
    entry = WatchlistEntry.objects.get()
    assert (entry.customer, entry.source, entry.added_by, entry.note) == (c, "manual", risk_user, "chargebacks")


def test_risk_removes_an_entry_with_a_note_in_the_admin(client, risk_user, listed):
    client.force_login(risk_user)
    response = client.post(reverse("admin:risk_watchlistentry_change", args=[listed.pk]), {"remove_with_note": "false alarm"})
    assert response.status_code == 302
    listed.refresh_from_db()
    assert listed.removed_by == risk_user and not services.is_watchlisted(customer=listed.customer)


def test_support_cannot_remove_an_entry(client, support_user, listed):
    client.force_login(support_user)
    client.post(reverse("admin:risk_watchlistentry_change", args=[listed.pk]), {"remove_with_note": "nope"})
    listed.refresh_from_db()
    assert listed.removed_at is None


def test_changing_a_weight_in_the_admin_logs_it(client, risk_user):
    s = RiskSettings.current()
    client.force_login(risk_user)
    data = {f.name: getattr(s, f.name) for f in RiskSettings._meta.concrete_fields if f.name not in ("id", "updated_at")}
    data.update(weight_velocity=10, change_note="too many false bursts")
    response = client.post(reverse("admin:risk_risksettings_change", args=[s.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert RiskSettings.current().weight_velocity == 10
    entry = AuditEntry.objects.get(content_type__model="risksettings", action=AuditEntry.Action.UPDATE)
    assert (entry.changes_dict, entry.actor, entry.additional_data) == (
        {"weight_velocity": ["30", "10"]},
        risk_user,
        {"note": "too many false bursts"},
    )


def _decided(verdict, score, *, channel=None, weeks_ago=0, escalation="risk score", trace=None, signals=None):
    o = OrderFactory(**({"channel": channel} if channel else {}))
    return RefundRequestFactory(
        order=o,
        state=RefundRequest.State.REJECTED if verdict == "abusive" else RefundRequest.State.REFUNDED,
        verdict=verdict,
        risk_score=score,
        escalation_reason=escalation,
        rule_trace=trace or [{"rule": "risk_score", "outcome": "escalate", "sentence": "x"}],
        risk_signals=signals or [],
        created_at=timezone.now() - timedelta(weeks=weeks_ago, hours=1),
    )


def test_report_rates_precision_and_recall():
    from tests.factories import ChannelFactory

    web, chat = ChannelFactory(name="web"), ChannelFactory(name="chat")
    _decided("abusive", 90, channel=web, signals=[{"code": "velocity", "text": "t", "points": 30}])  # TP
    _decided("abusive", 50, channel=web)  # FN
    _decided("legitimate", 80, channel=chat)  # FP
    _decided("legitimate", 10, channel=chat, weeks_ago=1, trace=[{"rule": "dispute_reason", "outcome": "escalate"}])  # TN
    RefundRequestFactory()  # no verdict: not in the figures
    with CaptureQueriesContext(connection) as ctx:
        report = abuse_report()
    assert len(ctx.captured_queries) == 5
    assert (report.tp, report.fn, report.fp, report.tn) == (1, 1, 1, 1)
    assert (report.precision, report.recall) == (0.5, 0.5)
    assert [(r["key"], r["decided"], r["abusive"]) for r in report.channels] == [("chat", 2, 0), ("web", 2, 2)]
    assert sorted((r["decided"], r["abusive"]) for r in report.weeks) in ([(1, 0), (3, 2)], [(4, 2)])
    assert dict(report.escalations) == {"risk_score": 3, "dispute_reason": 1}
    assert dict(report.signals) == {"velocity": 1}


def test_report_page_has_the_chart_for_risk_and_is_refused_to_support(client, risk_user, support_user):
    _decided("abusive", 90)
    client.force_login(risk_user)
    body = client.get(reverse("admin:risk_report")).content.decode()
    assert '<svg id="weekly-chart"' in body and "<rect" in body
    client.force_login(support_user)
    assert client.get(reverse("admin:risk_report")).status_code == 403


def test_adding_by_hand_without_a_note_is_refused_with_the_form(client, risk_user):
    client.force_login(risk_user)
    response = client.post(
        reverse("admin:risk_watchlistentry_add"), {"customer": CustomerFactory().pk, "note": "", "expires_at": ""}
    )
    assert response.status_code == 200 and "This field is required" in response.content.decode()
    assert not WatchlistEntry.objects.exists()
