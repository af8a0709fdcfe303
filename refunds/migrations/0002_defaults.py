"""What a new install starts with in refunds: the default policy, and the django-q2 schedules
of the sweepers (work a crashed task or a broker outage left behind), the refund timers, the
SLA watch, the old-export clean-up and the daily reconciliation against the gateway's books.

Squashed before the first release from the data migrations 0002, 0008, 0010, 0011 and 0013."""

import datetime

from django.db import migrations
from django.utils import timezone

DEFAULT_DISPUTE_REASONS = ["not_as_described", "used_goods", "quality_issue"]

# (name, func, every N minutes)
EVERY = [
    ("refunds: evaluate requests left in submitted", "refunds.tasks.sweep_submitted", 1),
    ("refunds: re-drive stuck payouts", "refunds.tasks.sweep_payouts", 1),
    ("refunds: queue exports whose task was lost", "refunds.tasks.sweep_exports", 1),
    ("refunds: SLA alerts", "refunds.tasks.sla_sweep", 5),
    ("refunds: expire overdue returns", "refunds.tasks.expire_returns", 10),
    ("refunds: time out awaiting_customer", "refunds.tasks.time_out_awaiting_customer", 10),
    # Exports hold customer data: the cluster deletes them once they are old.
    ("refunds: delete old exports", "refunds.tasks.exports_clean_task", 60),
]
RECONCILE = "refunds: reconcile yesterday against the gateway"


def create_defaults(apps, schema_editor):
    # Payout settings' one row: empty, so the deployment's PAYOUT_FOUR_EYES_ABOVE applies until an admin sets a value.
    apps.get_model("refunds", "PayoutSettings").objects.get_or_create(pk=1)
    RefundPolicy = apps.get_model("refunds", "RefundPolicy")
    if not RefundPolicy.objects.filter(channel__isnull=True).exists():
        RefundPolicy.objects.create(name="Default policy", dispute_reasons=DEFAULT_DISPUTE_REASONS)
    Schedule = apps.get_model("django_q", "Schedule")
    for name, func, minutes in EVERY:
        Schedule.objects.update_or_create(
            name=name, defaults={"func": func, "schedule_type": "I", "minutes": minutes, "repeats": -1}
        )
    # Daily at 03:00: yesterday and the day before.
    tomorrow = timezone.localdate() + datetime.timedelta(days=1)
    next_run = datetime.datetime.combine(tomorrow, datetime.time(3, 0), tzinfo=timezone.get_current_timezone())
    Schedule.objects.update_or_create(
        name=RECONCILE,
        defaults={"func": "refunds.tasks.reconcile_yesterday", "schedule_type": "D", "repeats": -1, "next_run": next_run},
    )


def remove_schedules(apps, schema_editor):
    names = [name for name, _func, _minutes in EVERY] + [RECONCILE]
    apps.get_model("django_q", "Schedule").objects.filter(name__in=names).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("refunds", "0001_release"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create_defaults, remove_schedules)]
