"""A fresh database has the nightly full recompute scheduled and default settings."""

import pytest
from django_q.models import Schedule

from notifications.models import MessageTemplate
from risk.models import RiskSettings

pytestmark = pytest.mark.django_db


def test_the_full_recompute_is_scheduled_by_a_migration():
    schedule = Schedule.objects.get(func="risk.tasks.recompute_all")
    assert (schedule.schedule_type, schedule.repeats) == (Schedule.DAILY, -1)


def test_default_settings_exist_and_the_staff_message_has_a_template():
    assert RiskSettings.objects.filter(pk=1).exists()
    assert set(MessageTemplate.objects.filter(event="watchlist_added").values_list("language", flat=True)) == {"en", "zh-hans"}


def test_the_scheduled_task_recomputes(django_capture_on_commit_callbacks):
    from risk import tasks
    from risk.models import RiskProfile
    from tests.factories import CustomerFactory

    c = CustomerFactory()
    tasks.recompute_all()
    assert RiskProfile.objects.filter(customer=c).exists()
