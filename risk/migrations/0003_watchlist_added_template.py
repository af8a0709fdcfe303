from django.db import migrations

# (event, channel, language, subject, body) — the risk role's inbox message when patterns
# put customers on the watch list (one per entry, or one summary for a big pass).
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


def seed(apps, schema_editor):
    MessageTemplate = apps.get_model("notifications", "MessageTemplate")
    for event, channel, language, subject, body in TEMPLATES:
        MessageTemplate.objects.get_or_create(
            event=event, channel=channel, language=language, defaults={"subject": subject, "body": body}
        )


class Migration(migrations.Migration):
    dependencies = [
        ("risk", "0002_schedule_and_settings"),
        ("notifications", "0004_seed_templates_limits_schedules"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
