from django.db import migrations

# An export whose task the broker refused (Redis down at the click) stays `queued`; this
# sweeper, run every minute like the others, queues its task again.
NAME = "refunds: queue exports whose task was lost"


def schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name=NAME, defaults={"func": "refunds.tasks.sweep_exports", "schedule_type": "I", "minutes": 1, "repeats": -1}
    )


def unschedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("refunds", "0010_reconcile_permission_timers_schedules"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(schedule, unschedule)]
