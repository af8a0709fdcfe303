"""Turning an event into text: the admin-edited template, the event's context and the refund.

Templates use Django's template language without HTML escaping (SMS and inbox text are
plain text). They only ever see plain values, never model instances, so an edited
template can not call methods or walk relations.
"""

import logging

from django.conf import settings
from django.template import Context, TemplateSyntaxError

from notifications.models import MessageTemplate, compile_text

logger = logging.getLogger(__name__)


def refund_context(refund) -> dict:
    """The refund's fields a template may use; plain values only."""
    if refund is None:
        return {}
    return {
        "refund_number": refund.number,
        "order_number": refund.order.number if refund.order_id else "",
        "customer_name": refund.customer.name if refund.customer_id else "",
        "state": refund.get_state_display(),
        "kind": refund.get_kind_display(),
        "reason": refund.get_reason_display(),
        "refund_method": refund.get_refund_method_display(),
        "currency": refund.currency,
        "amount_requested": str(refund.amount_requested),
        "amount_approved": str(refund.amount_approved) if refund.amount_approved is not None else "",
        "amount_paid": str(refund.amount_paid),
        "decision_reason": refund.decision_reason,
        "escalation_reason": refund.escalation_reason,
    }


def find_template(*, event: str, channel: str, language: str) -> MessageTemplate | None:
    """The template for this event, channel and language, falling back to English, and for
    e-mail to the SMS text (an e-mail says what the SMS says unless someone wrote more)."""
    channels = [channel, "sms"] if channel == "email" else [channel]
    languages = [language] if language == "en" else [language, "en"]
    candidates = list(MessageTemplate.objects.filter(event=event, channel__in=channels, language__in=languages))
    for ch in channels:
        for lang in languages:
            for tpl in candidates:
                if tpl.channel == ch and tpl.language == lang:
                    return tpl
    return None


def render(*, event: str, channel: str, language: str, refund=None, context: dict | None = None) -> tuple[str, str]:
    """(subject, body) for a message. A missing or broken template never breaks the state
    change that writes the message: it falls back to a plain line and logs why."""
    values = {**refund_context(refund), **(context or {}), "event": event}
    tpl = find_template(event=event, channel=channel, language=language)
    fallback_subject = f"[Refund Desk] {values.get('refund_number', '')}".strip()
    if tpl is None:
        logger.warning("no message template for %s/%s/%s", event, channel, language)
        return fallback_subject, f"{event.replace('_', ' ')} {values.get('refund_number', '')}".strip()
    try:
        ctx = Context(values, autoescape=False)
        subject = compile_text(tpl.subject).render(ctx).strip() or fallback_subject
        body = compile_text(tpl.body).render(ctx).strip()
    except TemplateSyntaxError:
        logger.exception("message template %s does not compile", tpl)
        return fallback_subject, f"{event.replace('_', ' ')} {values.get('refund_number', '')}".strip()
    return subject, body


def preview(template: MessageTemplate) -> tuple[str, str]:
    """The template rendered against a sample refund, for the admin."""
    values = {
        "refund_number": "RF-000123",
        "order_number": "ORD-000042",
        "customer_name": "Li Lei",
        "state": "Under review",
        "kind": "Return and refund",
        "reason": "Size or fit",
        "refund_method": "Original payment",
        "currency": "CNY",
        "amount_requested": "59.90",
        "amount_approved": "59.90",
        "amount_paid": "59.90",
        "amount": "59.90",
        "method": "Original payment",
        "decision_reason": "outside the return window",
        "escalation_reason": "dispute reason: not as described",
        "reason_text": "outside the return window",
        "return_code": "418203957716",
        "address": settings.REFUND_DESK["RETURN_ADDRESS"],
        "deadline": "2026-12-10",
        "question": "Could you send a photo of the label?",
        "payout": "PO-000077",
        "error": "gateway declined: insufficient merchant balance",
        "hours": "26",
        "limit_hours": "24",
        "queue": "refund-desk",
        "queued": "37",
        "oldest_minutes": "6",
        "idle_minutes": "5",
        "stalled_minutes": "12",
        "event": template.event,
    }
    ctx = Context(values, autoescape=False)
    return compile_text(template.subject).render(ctx), compile_text(template.body).render(ctx)
