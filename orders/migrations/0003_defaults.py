"""What a new install starts with in orders: the nightly retention sweeper's schedule.

Squashed before the first release."""

from django.db import migrations

# Every night, the customers with nothing of theirs touched for CUSTOMER_RETENTION_DAYS have
# their personal data replaced (orders.services_erasure), like the other sweepers' schedules.
NAME = "orders: anonymize customers inactive past the retention time"


def schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name=NAME,
        defaults={"func": "orders.tasks.anonymize_inactive_customers", "schedule_type": "D", "repeats": -1},
    )


def unschedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0002_release"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(schedule, unschedule)]
