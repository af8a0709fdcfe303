from django.db import migrations

SCHEDULE_NAME = "risk: full profile recompute"


def create_defaults(apps, schema_editor):
    apps.get_model("risk", "RiskSettings").objects.get_or_create(pk=1)
    # Nightly: incremental updates keep profiles current; this catches windows that slid.
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name=SCHEDULE_NAME,
        defaults={"func": "risk.tasks.recompute_all", "schedule_type": "D", "repeats": -1},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=SCHEDULE_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("risk", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create_defaults, remove_schedule)]
