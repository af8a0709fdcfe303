"""What a new install starts with in notifications: every message template in English and
Simplified Chinese (customer SMS and the staff inbox), the default SLA limits, and the outbox
sweeper's schedule. Editable in the admin afterwards; re-running only fills in what is missing.

Squashed before the first release from the data migrations 0004, 0006 and 0007."""

from django.db import migrations

# (event, channel, subject_en, body_en, subject_zh, body_zh)
TEMPLATES = [
    # --- to the customer (SMS; e-mail uses the SMS text unless an e-mail template exists) ---
    (
        "request_received", "sms",
        "We received your refund request {{ refund_number }}",
        "Refund Desk: we received your refund request {{ refund_number }} for order {{ order_number }} "
        "({{ currency }} {{ amount_requested }}). We will tell you the decision shortly.",
        "我们已收到您的退款申请 {{ refund_number }}",
        "【退款服务】我们已收到您订单 {{ order_number }} 的退款申请 {{ refund_number }}"
        "（{{ currency }} {{ amount_requested }}），处理结果将尽快通知您。",
    ),
    (
        "refund_approved", "sms",
        "Your refund request {{ refund_number }} is approved",
        "Good news: your refund request {{ refund_number }} is approved ({{ currency }} {{ amount_approved }}).",
        "您的退款申请 {{ refund_number }} 已通过",
        "【退款服务】您的退款申请 {{ refund_number }} 已审核通过（{{ currency }} {{ amount_approved }}）。",
    ),
    (
        "refund_rejected", "sms",
        "Your refund request {{ refund_number }} was not approved",
        "Your refund request {{ refund_number }} was not approved: {{ reason }}. Reply to this message if you disagree.",
        "您的退款申请 {{ refund_number }} 未通过",
        "【退款服务】很抱歉，您的退款申请 {{ refund_number }} 未通过，原因：{{ reason }}。如有异议请回复本消息。",
    ),
    (
        "refund_under_review", "sms",
        "Your refund request {{ refund_number }} is under review",
        "Your refund request {{ refund_number }} is being reviewed by our team. We will get back to you within one working day.",
        "您的退款申请 {{ refund_number }} 正在审核",
        "【退款服务】您的退款申请 {{ refund_number }} 正在人工审核，我们将在一个工作日内答复您。",
    ),
    (
        "alternative_offered", "sms",
        "An offer about {{ refund_number }}",
        "About your refund request {{ refund_number }}: {{ description }} Reply YES to accept, or tell us if you still want a refund.",
        "关于 {{ refund_number }} 的处理建议",
        "【退款服务】关于您的退款申请 {{ refund_number }}：{{ description }} 回复“是”接受，或告诉我们您仍希望退款。",
    ),
    (
        "alternative_accepted", "sms",
        "{{ refund_number }} is resolved",
        "Thank you: your request {{ refund_number }} is resolved as agreed. {{ description }}",
        "{{ refund_number }} 已解决",
        "【退款服务】感谢您的确认，申请 {{ refund_number }} 已按约定解决。{{ description }}",
    ),
    (
        "more_information_needed", "sms",
        "We need more information about {{ refund_number }}",
        "We need more information about your refund request {{ refund_number }}: {{ question }} Please reply to this message.",
        "关于 {{ refund_number }} 需要补充信息",
        "【退款服务】关于您的退款申请 {{ refund_number }}，我们需要更多信息：{{ question }} 请直接回复本消息。",
    ),
    (
        "return_instructions", "sms",
        "How to return your item for {{ refund_number }}",
        "Please send the item back for {{ refund_number }} by {{ deadline }} to {{ address }}. "
        "Write return code {{ return_code }} on the parcel.",
        "{{ refund_number }} 退货说明",
        "【退款服务】请于 {{ deadline }} 前将 {{ refund_number }} 的商品寄回：{{ address }}，并在包裹上注明退货码 {{ return_code }}。",
    ),
    (
        "parcel_received", "sms",
        "We received your parcel for {{ refund_number }}",
        "We received your returned parcel for {{ refund_number }}. We will check it and refund you shortly.",
        "我们已收到 {{ refund_number }} 的退货包裹",
        "【退款服务】我们已收到您 {{ refund_number }} 的退货包裹，验收后将尽快为您退款。",
    ),
    (
        "refund_paid", "sms",
        "Your refund for {{ refund_number }} is paid",
        "Your refund for {{ refund_number }} is paid: {{ currency }} {{ amount }} by {{ method }}.",
        "{{ refund_number }} 退款已到账",
        "【退款服务】您的退款 {{ refund_number }} 已支付：{{ currency }} {{ amount }}，退款方式：{{ method }}。",
    ),
    (
        "refund_withdrawn", "sms",
        "Your refund request {{ refund_number }} was withdrawn",
        "Your refund request {{ refund_number }} was withdrawn. Nothing more is needed from you.",
        "您的退款申请 {{ refund_number }} 已撤回",
        "【退款服务】您的退款申请 {{ refund_number }} 已撤回，无需其他操作。",
    ),
    (
        "return_expired", "sms",
        "Your refund request {{ refund_number }} was cancelled",
        "Your refund request {{ refund_number }} was cancelled: no parcel arrived within the return window.",
        "您的退款申请 {{ refund_number }} 已取消",
        "【退款服务】您的退款申请 {{ refund_number }} 已取消：退货期限内未收到包裹。",
    ),
    # --- to staff (admin inbox) ---
    (
        "refund_escalated", "staff",
        "{{ refund_number }} needs a review",
        "{{ refund_number }} (order {{ order_number }}, {{ currency }} {{ amount_requested }}, {{ kind }}) needs a review: {{ reason }}.",
        "{{ refund_number }} 需要人工审核",
        "{{ refund_number }}（订单 {{ order_number }}，{{ currency }} {{ amount_requested }}，{{ kind }}）需要人工审核：{{ reason }}。",
    ),
    (
        "parcel_received", "staff",
        "Parcel received: {{ refund_number }}",
        "The warehouse received the parcel for {{ refund_number }} ({{ currency }} {{ amount_approved }} by {{ refund_method }}). "
        "It is ready to pay once inspection passes.",
        "已收到退货：{{ refund_number }}",
        "仓库已收到 {{ refund_number }} 的退货包裹（{{ currency }} {{ amount_approved }}，{{ refund_method }}），验收通过后即可付款。",
    ),
    (
        "ready_for_payout", "staff",
        "Ready to pay: {{ refund_number }}",
        "{{ refund_number }} is ready to pay: {{ currency }} {{ amount }} by {{ refund_method }}.",
        "待付款：{{ refund_number }}",
        "{{ refund_number }} 可以付款：{{ currency }} {{ amount }}，方式：{{ refund_method }}。",
    ),
    (
        "payout_failed", "staff",
        "Payout failed: {{ refund_number }}",
        "Payout {{ payout }} for {{ refund_number }} failed: {{ error }}. Retry it or pay another way.",
        "付款失败：{{ refund_number }}",
        "{{ refund_number }} 的付款 {{ payout }} 失败：{{ error }}。请重试或改用其他方式。",
    ),
    (
        "watchlist_hit", "staff",
        "Watch list: {{ refund_number }}",
        "{{ refund_number }} comes from a watch-listed customer ({{ customer_name }}){% if reason %}: {{ reason }}{% endif %}. "
        "It needs two reviewers.",
        "关注名单：{{ refund_number }}",
        "{{ refund_number }} 来自关注名单中的客户（{{ customer_name }}）{% if reason %}：{{ reason }}{% endif %}，需要两位审核人。",
    ),
    (
        "sla_breached", "staff",
        "Waiting too long: {{ refund_number }}",
        "{{ refund_number }} has waited {{ hours }} h in {{ state }} (limit {{ limit_hours }} h).",
        "等待超时：{{ refund_number }}",
        "{{ refund_number }} 已在“{{ state }}”状态等待 {{ hours }} 小时（时限 {{ limit_hours }} 小时）。",
    ),
    (
        "sla_escalated", "staff",
        "Escalation: {{ refund_number }}",
        "Escalation: {{ refund_number }} has waited {{ hours }} h in {{ state }} (escalation limit {{ limit_hours }} h).",
        "升级提醒：{{ refund_number }}",
        "升级提醒：{{ refund_number }} 已在“{{ state }}”状态等待 {{ hours }} 小时（升级时限 {{ limit_hours }} 小时）。",
    ),
    # --- the money-safety work: unknown payout outcomes, reconciliation, parked work (staff inbox) ---
    (
        "payout_outcome_unknown", "staff",
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
        "reconciliation_differences", "staff",
        "Reconciliation {{ day }}: {{ new }} new difference(s) with the gateway",
        "The gateway's books for {{ day }} disagree with ours: {{ count }} difference(s), {{ new }} new. "
        "Open Payouts → Daily reconciliation to see each one and record what was done.",
        "{{ day }} 对账：与网关有 {{ new }} 处新差异",
        "{{ day }} 网关账目与我们的账目不一致：共 {{ count }} 处差异，其中 {{ new }} 处为新发现。"
        "请打开 付款 → 每日对账 查看并记录处理结果。",
    ),
    (
        "reconciliation_failed", "staff",
        "Reconciliation {{ day }} could not ask the gateway",
        "The reconciliation of {{ day }} against the gateway's books failed: {{ error }}. Run it again from "
        "Payouts → Daily reconciliation.",
        "{{ day }} 对账未能查询网关",
        "{{ day }} 与网关账目的对账失败：{{ error }}。请在 付款 → 每日对账 中重新运行。",
    ),
    (
        "work_parked", "staff",
        "Background work parked: {{ sweeper }} #{{ row }}",
        "A sweeper failed on {{ sweeper }} #{{ row }} again and again and set it aside so the rest can go on: "
        "{{ error }}. Fix the cause, then send it back from Background work → Stuck work.",
        "后台任务已搁置：{{ sweeper }} #{{ row }}",
        "后台清扫任务多次处理 {{ sweeper }} #{{ row }} 失败，已将其搁置以免阻塞其他任务：{{ error }}。"
        "请修复原因后，在 后台任务 → 卡住的任务 中将其送回。",
    ),
    # --- stalled background work (administrators' inbox) ---
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

# state, role, alert after (minutes), escalate after (minutes)
SLA_LIMITS = [
    ("submitted", "support", 30, 240),
    ("under_review", "support", 24 * 60, 72 * 60),
    ("received", "warehouse", 24 * 60, 72 * 60),
    ("ready_for_payout", "finance", 48 * 60, 120 * 60),
]

SCHEDULES = [
    ("notifications: send due and stuck messages", "notifications.tasks.sweep_outbox", 1),
]


def seed(apps, schema_editor):
    MessageTemplate = apps.get_model("notifications", "MessageTemplate")
    for event, channel, subject_en, body_en, subject_zh, body_zh in TEMPLATES:
        for language, subject, body in (("en", subject_en, body_en), ("zh-hans", subject_zh, body_zh)):
            MessageTemplate.objects.get_or_create(
                event=event, channel=channel, language=language, defaults={"subject": subject, "body": body}
            )
    SlaLimit = apps.get_model("notifications", "SlaLimit")
    for state, role, alert, escalate in SLA_LIMITS:
        SlaLimit.objects.get_or_create(
            state=state, defaults={"role": role, "alert_after_minutes": alert, "escalate_after_minutes": escalate}
        )
    Schedule = apps.get_model("django_q", "Schedule")
    for name, func, minutes in SCHEDULES:
        Schedule.objects.update_or_create(
            name=name, defaults={"func": func, "schedule_type": "I", "minutes": minutes, "repeats": -1}
        )


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0002_release"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
