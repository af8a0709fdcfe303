"""Phone numbers and e-mail addresses are masked in logs and in the errors we store."""

import io
import logging

import pytest
from django.core import mail

from config.models import StuckWork
from config.pii import redact
from config.sweeps import sweep
from notifications import senders
from notifications.backends import sms
from notifications.models import Notification

PHONE, EMAIL = "+8613912345678", "zhao.wenjing@example.org"


@pytest.mark.parametrize(
    "text, gone, kept",
    [
        (f"SMS to {PHONE}: refund paid", [PHONE, "13912345678"], ["+86 139****5678", "refund paid"]),
        ("call 13912345678 or 139 1234 5678 or +86 139-1234-5678", ["12345678", "1234 5678", "1234-5678"], ["5678"]),
        (f"recipient refused: {{'{EMAIL}': (550, b'no such user')}}", [EMAIL], ["z***@example.org", "550"]),
        # what is not personal stays readable
        (
            "RF-000123 of ORD-000042 paid 12345678.90 on 2026-12-08 01:12:50",
            [],
            ["RF-000123", "ORD-000042", "12345678.90", "2026-12-08 01:12:50"],
        ),
        ("payout 0b8f5a2e-1234-4a5b-9c3d-123456789012 failed", [], ["0b8f5a2e-1234-4a5b-9c3d-123456789012"]),
    ],
)
def test_redact_masks_phones_and_email_addresses_and_nothing_else(text, gone, kept):
    clean = redact(text)
    for value in gone:
        assert value not in clean
    for value in kept:
        assert value in clean


@pytest.fixture
def log_stream():
    """What the configured root handler (settings.LOGGING) writes."""
    handler = next(h for h in logging.getLogger().handlers if any(f.__class__.__name__ == "RedactPII" for f in h.filters))
    stream = io.StringIO()
    old = handler.setStream(stream)
    yield stream
    handler.setStream(old)


def test_log_lines_and_tracebacks_are_masked_by_the_configured_handler(log_stream):
    log = logging.getLogger("refunds.anything")
    log.warning("notification %s to %s failed", 7, PHONE)
    try:
        raise ValueError(f"bad recipient {EMAIL}")
    except ValueError:
        log.exception("sending to %s failed", EMAIL)
    written = log_stream.getvalue()
    assert "notification 7 to +86 139****5678 failed" in written
    assert "ValueError: bad recipient z***@example.org" in written
    assert PHONE not in written and EMAIL not in written


def test_the_console_sms_backend_prints_the_number_masked(capsys):
    sms.ConsoleBackend().send(to=PHONE, body=f"Your refund is paid. Questions: {EMAIL}", reference="r-1")
    out = capsys.readouterr().out
    assert "SMS to +86 139****5678 [r-1]" in out
    assert PHONE not in out and EMAIL not in out


def test_the_console_email_backend_prints_the_address_masked():
    from notifications.backends.email import ConsoleBackend

    stream = io.StringIO()
    message = mail.EmailMessage(subject="退款", body=f"已退款。电话 {PHONE}", to=[EMAIL])
    ConsoleBackend(stream=stream).send_messages([message])
    out = stream.getvalue()
    assert "To: z***@example.org" in out and "已退款" in out
    assert PHONE not in out and EMAIL not in out


@pytest.mark.django_db
def test_an_invalid_number_is_stored_masked_in_last_error(settings):
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, "SMS_BACKEND": "notifications.backends.sms.MemoryBackend"}
    number = "+86 1391234567"  # one digit short: not a valid number
    row = Notification.objects.create(channel="sms", event="refund_paid", recipient=number, body="paid")
    senders.send_one(notification_id=row.pk)
    row.refresh_from_db()
    assert row.status == Notification.Status.DEAD
    assert row.last_error.startswith("invalid phone number '+86 139***4567'")
    assert "1391234567" not in row.last_error


@pytest.mark.django_db
def test_a_provider_error_naming_the_recipient_is_stored_masked(settings, monkeypatch):
    class Refusing:
        def send(self, *, to, body, reference):
            raise sms.SendError(f"provider answered 400: 21211 The 'To' number {to} is not valid", permanent=True)

    monkeypatch.setattr(senders, "get_sms_backend", Refusing)
    row = Notification.objects.create(channel="sms", event="refund_paid", recipient=PHONE, body="paid")
    senders.send_one(notification_id=row.pk)
    row.refresh_from_db()
    assert "+86 139****5678" in row.last_error and PHONE not in row.last_error


@pytest.mark.django_db
def test_a_sweeper_error_is_stored_masked(settings):
    settings.SWEEP_PARK_AFTER = 1

    def failing(pk):
        raise RuntimeError(f"customer {EMAIL} at {PHONE} broke it")

    report = sweep("test: failing", [1], failing)
    stuck = StuckWork.objects.get(sweeper="test: failing")
    assert PHONE not in stuck.last_error and EMAIL not in stuck.last_error
    assert "z***@example.org" in stuck.last_error
    assert PHONE not in report.parked[0][1]
