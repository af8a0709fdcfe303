"""What a new install starts with in risk: its settings row, the nightly full recompute of the
profiles, and the risk role's inbox message when customers are put on the watch list.

Squashed before the first release from the data migrations 0002 and 0003."""

from django.db import migrations

SCHEDULE_NAME = "risk: full profile recompute"

# (event, channel, language, subject, body) — one per entry, or one summary for a big pass.
TEMPLATES = [
    (
        "watchlist_added", "staff", "en",
        "Watch list: {% if count %}{{ count }} customers added{% else %}customer {{ customer_id }} added{% endif %}",
        "{% if count %}{{ count }} customers were put on the watch list automatically by the nightly recompute."
        "{% else %}Customer {{ customer_id }} was put on the watch list automatically: {{ reason }} ({{ evidence }}).{% endif %}",
    ),
    (
        "watchlist_added", "staff", "zh-hans",
        "关注名单：{% if count %}新增 {{ count }} 位客户{% else %}新增客户 {{ customer_id }}{% endif %}",
        "{% if count %}夜间重算自动将 {{ count }} 位客户加入关注名单。"
        "{% else %}客户 {{ customer_id }} 已被自动加入关注名单：{{ reason }}（{{ evidence }}）。{% endif %}",
    ),
]


def create_defaults(apps, schema_editor):
    apps.get_model("risk", "RiskSettings").objects.get_or_create(pk=1)
    # Nightly: incremental updates keep profiles current; this catches windows that slid.
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name=SCHEDULE_NAME,
        defaults={"func": "risk.tasks.recompute_all", "schedule_type": "D", "repeats": -1},
    )
    MessageTemplate = apps.get_model("notifications", "MessageTemplate")
    for event, channel, language, subject, body in TEMPLATES:
        MessageTemplate.objects.get_or_create(
            event=event, channel=channel, language=language, defaults={"subject": subject, "body": body}
        )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=SCHEDULE_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("risk", "0001_release"),
        ("notifications", "0003_defaults"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create_defaults, remove_schedule)]
