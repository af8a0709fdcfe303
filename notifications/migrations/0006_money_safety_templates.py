"""Staff messages of the money-safety work: unknown payout outcomes, differences with the
gateway's books, and rows a sweeper parked. Editable in the admin afterwards."""

from django.db import migrations

# (event, subject_en, body_en, subject_zh, body_zh), all to the staff inbox.
TEMPLATES = [
    (
        "payout_outcome_unknown",
        "Payout outcome still unknown: {{ payout }}",
        "The gateway has not said whether it paid {{ payout }} ({{ refund_number }}, {{ currency }} {{ amount_approved }}): "
        "{{ error }}. Asked {{ checks }} times; last answer: {{ answer }}. It can't be voided, retried or paid another "
        "way until the gateway answers; see Payouts → Outcome unknown.",
        "付款结果仍未知：{{ payout }}",
        "网关尚未答复是否已支付 {{ payout }}（{{ refund_number }}，{{ currency }} {{ amount_approved }}）：{{ error }}。"
        "已查询 {{ checks }} 次，最近答复：{{ answer }}。在网关答复之前，不能作废、重试或改用其他方式支付；"
        "请查看 付款 → 结果未知。",
    ),
    (
        "reconciliation_differences",
        "Reconciliation {{ day }}: {{ new }} new difference(s) with the gateway",
        "The gateway's books for {{ day }} disagree with ours: {{ count }} difference(s), {{ new }} new. "
        "Open Payouts → Daily reconciliation to see each one and record what was done.",
        "{{ day }} 对账：与网关有 {{ new }} 处新差异",
        "{{ day }} 网关账目与我们的账目不一致：共 {{ count }} 处差异，其中 {{ new }} 处为新发现。"
        "请打开 付款 → 每日对账 查看并记录处理结果。",
    ),
    (
        "reconciliation_failed",
        "Reconciliation {{ day }} could not ask the gateway",
        "The reconciliation of {{ day }} against the gateway's books failed: {{ error }}. Run it again from "
        "Payouts → Daily reconciliation.",
        "{{ day }} 对账未能查询网关",
        "{{ day }} 与网关账目的对账失败：{{ error }}。请在 付款 → 每日对账 中重新运行。",
    ),
    (
        "work_parked",
        "Background work parked: {{ sweeper }} #{{ row }}",
        "A sweeper failed on {{ sweeper }} #{{ row }} again and again and set it aside so the rest can go on: "
        "{{ error }}. Fix the cause, then send it back from Background work → Stuck work.",
        "后台任务已搁置：{{ sweeper }} #{{ row }}",
        "后台清扫任务多次处理 {{ sweeper }} #{{ row }} 失败，已将其搁置以免阻塞其他任务：{{ error }}。"
        "请修复原因后，在 后台任务 → 卡住的任务 中将其送回。",
    ),
]


def seed(apps, schema_editor):
    MessageTemplate = apps.get_model("notifications", "MessageTemplate")
    for event, subject_en, body_en, subject_zh, body_zh in TEMPLATES:
        for language, subject, body in (("en", subject_en, body_en), ("zh-hans", subject_zh, body_zh)):
            MessageTemplate.objects.get_or_create(
                event=event, channel="staff", language=language, defaults={"subject": subject, "body": body}
            )


def unseed(apps, schema_editor):
    apps.get_model("notifications", "MessageTemplate").objects.filter(event__in=[t[0] for t in TEMPLATES]).delete()


class Migration(migrations.Migration):
    dependencies = [("notifications", "0005_i18n_labels")]

    operations = [migrations.RunPython(seed, unseed)]
