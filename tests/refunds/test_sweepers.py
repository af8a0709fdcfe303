"""Sweepers that one bad row can't stop: each row on its own, in a stable order, and a row
that keeps failing parked (with its error, in the admin) instead of blocking the rest."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from config.models import StuckWork
from notifications.models import Notification
from refunds import rules
from refunds.models import RefundRequest
from refunds.tasks import sweep_submitted
from tests.factories import OrderFactory
from tests.refunds import journeys

pytestmark = pytest.mark.django_db
S = RefundRequest.State


@pytest.fixture
def left_in_submitted():
    """Eight requests whose evaluation task was lost, a few minutes old."""
    ids = [journeys.submit(OrderFactory(lines=[("SKU-1", 1, "15.00")]), kind="refund_only") for _ in range(8)]
    RefundRequest.objects.filter(pk__in=ids).update(created_at=timezone.now() - timedelta(minutes=5))
    return ids


@pytest.fixture
def poisoned(monkeypatch, left_in_submitted):
    """The evaluation of the oldest of them fails, every time."""
    bad = left_in_submitted[0]
    real = rules.gather_facts

    def gather_facts(refund, **kwargs):
        if refund.pk == bad:
            raise ValueError("the policy of this channel can't be read")
        return real(refund, **kwargs)

    monkeypatch.setattr(rules, "gather_facts", gather_facts)
    return bad


def _states(ids):
    return dict(RefundRequest.objects.filter(pk__in=ids).values_list("pk", "state"))


def test_one_poisoned_request_does_not_keep_the_seven_behind_it_waiting(settings, left_in_submitted, poisoned):
    settings.SWEEP_PARK_AFTER = 3

    assert sweep_submitted() == 7

    states = _states(left_in_submitted)
    assert states.pop(poisoned) == S.SUBMITTED
    assert S.SUBMITTED not in states.values()
    stuck = StuckWork.objects.get()
    assert (stuck.sweeper, stuck.object_id, stuck.failures, stuck.parked_at) == (
        "refunds.refundrequest:evaluate",
        poisoned,
        1,
        None,
    )
    assert "ValueError: the policy of this channel can't be read" in stuck.last_error


def test_a_row_that_keeps_failing_is_parked_once_and_left_out_of_later_runs(settings, left_in_submitted, poisoned, monkeypatch):
    settings.SWEEP_PARK_AFTER = 3
    for _ in range(3):
        sweep_submitted()
    stuck = StuckWork.objects.get()
    assert (stuck.failures, stuck.parked_at is not None) == (3, True)
    alerts = Notification.objects.filter(event="work_parked", recipient="admin")
    assert alerts.count() == 1 and f"#{poisoned}" in alerts.get().subject

    tried = []
    real = rules.gather_facts
    monkeypatch.setattr(rules, "gather_facts", lambda refund, **kw: tried.append(refund.pk) or real(refund, **kw))
    assert sweep_submitted() == 0
    assert tried == []  # parked: not even tried
    assert StuckWork.objects.get().failures == 3
    assert Notification.objects.filter(event="work_parked").count() == 1


def test_a_row_that_fails_once_and_then_works_leaves_no_trace(settings, left_in_submitted, monkeypatch):
    bad = left_in_submitted[0]
    real = rules.gather_facts
    calls = {"n": 0}

    def flaky(refund, **kwargs):
        if refund.pk == bad and calls["n"] == 0:
            calls["n"] += 1
            raise ConnectionError("the risk service blinked")
        return real(refund, **kwargs)

    monkeypatch.setattr(rules, "gather_facts", flaky)
    sweep_submitted()
    assert StuckWork.objects.filter(object_id=bad).exists()

    sweep_submitted()

    assert RefundRequest.objects.get(pk=bad).state != S.SUBMITTED
    assert not StuckWork.objects.exists()


def test_the_admin_shows_parked_work_and_sends_it_back(settings, client, admin_user, left_in_submitted, poisoned, monkeypatch):
    settings.SWEEP_PARK_AFTER = 1
    sweep_submitted()
    client.force_login(admin_user)
    url = reverse("admin:config_stuckwork_changelist")

    page = client.get(url).content.decode()
    assert "refunds.refundrequest:evaluate" in page
    assert reverse("admin:refunds_refundrequest_change", args=[poisoned]) in page
    assert "the policy of this channel can" in page

    monkeypatch.undo()  # the cause is fixed
    stuck = StuckWork.objects.get()
    response = client.post(url, {"action": "send_back", "_selected_action": [stuck.pk]})
    assert response.status_code == 302
    assert not StuckWork.objects.exists()
    sweep_submitted()
    assert RefundRequest.objects.get(pk=poisoned).state != S.SUBMITTED


@pytest.mark.parametrize("role", ["support", "warehouse", "finance", "risk"])
def test_only_an_administrator_sees_stuck_work(client, role):
    from tests.factories import UserFactory

    client.force_login(UserFactory(username=f"{role}-x", role=role))
    assert client.get(reverse("admin:config_stuckwork_changelist")).status_code == 403
