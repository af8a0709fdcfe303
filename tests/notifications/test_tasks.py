from datetime import timedelta

import pytest
from django.utils import timezone

from notifications import selectors
from notifications.models import Notification, SlaBreach, SlaLimit
from refunds import services as refunds
from refunds.models import RefundRequest
from tests.notifications.conftest import evaluated

pytestmark = pytest.mark.django_db
State = RefundRequest.State


@pytest.fixture
def review_limit(db):
    SlaLimit.objects.update_or_create(
        state=State.UNDER_REVIEW,
        defaults={"role": "support", "alert_after_minutes": 60, "escalate_after_minutes": 240, "escalate_to": "risk"},
    )
    SlaLimit.objects.exclude(state=State.UNDER_REVIEW).update(active=False)


def test_a_request_past_its_limit_alerts_the_role_once_not_on_every_sweep(review_limit, support_user, risk_user):
    waiting = evaluated(reason="not_as_described")
    fresh = evaluated(reason="not_as_described")
    RefundRequest.objects.filter(pk=waiting.pk).update(state_changed_at=timezone.now() - timedelta(minutes=90))
    unread_before = selectors.unread_count_for(support_user)  # the escalation messages from intake

    assert refunds.sla_sweep() == 1
    assert refunds.sla_sweep() == 0
    assert refunds.sla_sweep() == 0

    alerts = Notification.objects.filter(event="sla_breached")
    assert list(alerts.values_list("refund_id", "recipient")) == [(waiting.pk, "support")]
    assert "has waited 1.5 h in Under review (limit 1.0 h)" in alerts.get().body
    assert selectors.unread_count_for(support_user) == unread_before + 1
    assert not SlaBreach.objects.filter(refund=fresh).exists()
    assert selectors.unread_count_for(risk_user) == 0


def test_escalation_comes_once_after_the_longer_limit(review_limit, support_user, risk_user):
    waiting = evaluated(reason="not_as_described")
    entered = waiting.state_changed_at
    unread_before = selectors.unread_count_for(support_user)

    assert refunds.sla_sweep(now=entered + timedelta(minutes=90)) == 1  # alert
    assert refunds.sla_sweep(now=entered + timedelta(minutes=200)) == 0
    assert refunds.sla_sweep(now=entered + timedelta(minutes=300)) == 1  # escalation
    assert refunds.sla_sweep(now=entered + timedelta(minutes=900)) == 0

    assert list(Notification.objects.filter(event="sla_breached").values_list("recipient", flat=True)) == ["support"]
    assert list(Notification.objects.filter(event="sla_escalated").values_list("recipient", flat=True)) == ["risk"]
    assert "has waited 5.0 h in Under review (escalation limit 4.0 h)" in Notification.objects.get(event="sla_escalated").body
    assert selectors.unread_count_for(support_user) == unread_before + 1
    assert selectors.unread_count_for(risk_user) == 1


def test_leaving_and_re_entering_a_state_is_a_new_stay_with_its_own_alert(review_limit, support):
    refund = evaluated(reason="not_as_described")
    RefundRequest.objects.filter(pk=refund.pk).update(state_changed_at=timezone.now() - timedelta(minutes=90))
    assert refunds.sla_sweep() == 1
    refunds.refund_ask_customer(refund_id=refund.pk, actor=support, question="Which size?")
    refunds.refund_resume(refund_id=refund.pk, actor=support, message="")
    assert refunds.sla_sweep() == 0  # back in review, but only just
    RefundRequest.objects.filter(pk=refund.pk).update(state_changed_at=timezone.now() - timedelta(minutes=61))
    assert refunds.sla_sweep() == 1
    assert SlaBreach.objects.filter(refund=refund, level="alert").count() == 2


def test_an_inactive_limit_alerts_nobody(review_limit):
    SlaLimit.objects.update(active=False)
    refund = evaluated(reason="not_as_described")
    RefundRequest.objects.filter(pk=refund.pk).update(state_changed_at=timezone.now() - timedelta(days=30))
    assert refunds.sla_sweep() == 0
    assert not Notification.objects.filter(event__startswith="sla_").exists()
