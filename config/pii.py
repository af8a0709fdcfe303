"""Personal data out of logs and stored errors: phone numbers and e-mail addresses masked.

Written once, here at the bottom of the stack, because every layer writes text a person
may read later — a log line, a notification's `last_error`, a parked sweeper's error —
and any of it can carry a customer's number or address (a provider echoing the `To`, an
SMTP refusal naming the recipient, a row's `__str__`). `redact` masks what looks like one;
`RedactPII` applies it to every log record a configured handler writes (`LOGGING`).
`orders.masking` shows the same masks to staff roles.
"""

import logging
import re

# An e-mail address anywhere in a text.
_EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
# A phone number: "+" and 7 to 15 digits with single spaces or hyphens between groups
# ("+86 139-1234-5678"); 8 to 15 digits in a row ("13912345678"); or a national number
# grouped 3-3/4-4 ("139 1234 5678", "010-1234-5678"). Dates ("2026-12-08") and times are
# none of these. Not part of a longer word or number ("ORD-000123", a UUID, "12.50").
_PHONE = r"\+\d(?:[ -]?\d){6,14}|\d{8,15}|\d{3}[ -]\d{3,4}[ -]\d{4}"
_PII = re.compile(rf"(?P<email>{_EMAIL})|(?<![\w+\-])(?P<phone>{_PHONE})(?![\w\-]|\.\d)")


def mask_phone(phone: str) -> str:
    """'+8613812340000' → '+86 138****0000'; keeps the country code, prefix and last four."""
    digits = "".join(c for c in phone or "" if c.isdigit() or c == "+")
    if not digits:
        return ""
    country = ""
    if digits.startswith("+86"):
        country, digits = "+86 ", digits[3:]
    elif digits.startswith("+"):
        country, digits = digits[:3] + " ", digits[3:]
    if len(digits) <= 4:
        return country + "*" * len(digits)
    head = digits[:3] if len(digits) > 7 else ""
    return f"{country}{head}{'*' * (len(digits) - len(head) - 4)}{digits[-4:]}"


def mask_email(email: str) -> str:
    """'li.wei@example.com' → 'l***@example.com'."""
    local, _, domain = (email or "").partition("@")
    if not domain:
        return "*" * len(local)
    return f"{local[:1]}***@{domain}"


def redact(text: str) -> str:
    """`text` with every phone number and e-mail address in it masked."""
    if not text:
        return text
    return _PII.sub(lambda m: mask_email(m["email"]) if m["email"] else mask_phone(m["phone"]), str(text))


class RedactPII(logging.Filter):
    """Masks phones and e-mail addresses in a record's message and traceback before a handler
    writes it. On the handlers in `LOGGING`, so it covers every logger that reaches them."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
