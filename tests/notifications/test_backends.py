import pytest

from notifications.backends import SendError
from notifications.backends.sms import TwilioBackend

pytestmark = pytest.mark.django_db


def test_twilio_backend_sends_with_basic_auth_and_form_fields(twilio_settings, provider):
    sid = TwilioBackend().send(to="+8613800138000", body="你好 hello", reference="ref-1")
    assert sid.startswith("SM")
    assert provider.delivered == [
        {"key": "ref-1", "sid": sid, "to": "+8613800138000", "body": "你好 hello", "from": "+15005550006"}
    ]


def test_the_same_reference_twice_is_delivered_once(twilio_settings, provider):
    first = TwilioBackend().send(to="+8613800138000", body="hi", reference="ref-1")
    second = TwilioBackend().send(to="+8613800138000", body="hi", reference="ref-1")
    assert first == second
    assert len(provider.delivered) == 1
    assert provider.outcomes["ref-1"] == ["ok", "duplicate"]


def test_a_refused_number_is_a_permanent_error(twilio_settings, provider):
    with pytest.raises(SendError) as exc:
        TwilioBackend().send(to="12345", body="hi", reference="ref-1")
    assert exc.value.permanent
    assert "21211" in str(exc.value)


def test_wrong_credentials_are_permanent(twilio_settings, provider, settings):
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, "SMS_AUTH_TOKEN": "wrong"}
    with pytest.raises(SendError) as exc:
        TwilioBackend().send(to="+8613800138000", body="hi", reference="ref-1")
    assert exc.value.permanent
    assert provider.delivered == []


def test_a_provider_error_is_transient(twilio_settings, provider):
    provider.fail_rate = 1.0
    for _ in range(10):
        with pytest.raises(SendError) as exc:
            TwilioBackend().send(to="+8613800138000", body="hi", reference="ref-1")
        assert not exc.value.permanent
        assert "provider answered 50" in str(exc.value)


def test_an_unreachable_provider_is_transient(twilio_settings, settings):
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, "SMS_API_URL": "http://127.0.0.1:9"}
    with pytest.raises(SendError) as exc:
        TwilioBackend().send(to="+8613800138000", body="hi", reference="ref-1")
    assert not exc.value.permanent
    assert "unreachable" in str(exc.value)
