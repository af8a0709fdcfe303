"""What a new install starts with in accounts: the hourly deletion of expired sessions.

Squashed before the first release."""

from django.db import migrations

# Expired sessions (idle past SESSION_COOKIE_AGE, or never signed in) stay as rows until
# deleted; this schedule deletes them every hour (Django's `clearsessions`).
NAME = "accounts: delete expired sessions"


def schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name=NAME, defaults={"func": "accounts.tasks.prune_sessions", "schedule_type": "H", "repeats": -1}
    )


def unschedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_release"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(schedule, unschedule)]
