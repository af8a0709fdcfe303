"""The administrators' inbox messages about stalled background work (`health`), in English
and Simplified Chinese. Editable in the admin afterwards; re-running only fills in what is
missing."""

from django.db import migrations

# (event, channel, subject_en, body_en, subject_zh, body_zh)
TEMPLATES = [
    (
        "workers_stalled", "staff",
        "Background work has stopped",
        "Background work on queue {{ queue }} has stopped: {{ queued }} task(s) waiting"
        "{% if oldest_minutes %}, the oldest for {{ oldest_minutes }} min{% endif %}; "
        "{% if idle_minutes %}the last task finished {{ idle_minutes }} min ago{% else %}no task has finished yet{% endif %}. "
        "New requests stay submitted and messages wait until the qcluster service runs again: "
        "check it on the server (python manage.py check_workers).",
        "后台任务已停止",
        "队列 {{ queue }} 的后台任务已停止：{{ queued }} 个任务在等待"
        "{% if oldest_minutes %}，最早的已等待 {{ oldest_minutes }} 分钟{% endif %}；"
        "{% if idle_minutes %}最后一个任务完成于 {{ idle_minutes }} 分钟前{% else %}尚无任务完成{% endif %}。"
        "在 qcluster 服务恢复之前，新申请会停留在“已提交”，消息也不会发出：请在服务器上检查（python manage.py check_workers）。",
    ),
    (
        "workers_recovered", "staff",
        "Background work is moving again",
        "Background work on queue {{ queue }} is moving again, after about {{ stalled_minutes }} min.",
        "后台任务已恢复",
        "队列 {{ queue }} 的后台任务已恢复运行，停止了约 {{ stalled_minutes }} 分钟。",
    ),
]


def seed(apps, schema_editor):
    MessageTemplate = apps.get_model("notifications", "MessageTemplate")
    for event, channel, subject_en, body_en, subject_zh, body_zh in TEMPLATES:
        for language, subject, body in (("en", subject_en, body_en), ("zh-hans", subject_zh, body_zh)):
            MessageTemplate.objects.get_or_create(
                event=event, channel=channel, language=language, defaults={"subject": subject, "body": body}
            )


class Migration(migrations.Migration):
    dependencies = [("notifications", "0006_money_safety_templates")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
