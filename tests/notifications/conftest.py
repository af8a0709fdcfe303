import pytest

from config.actors import Actor
from notifications.backends import sms
from refunds import services
from tests.factories import OrderFactory
from tests.notifications.fake_provider import FakeTwilio


@pytest.fixture(autouse=True)
def memory_sms(settings):
    """SMS go to `notifications.backends.sms.outbox` in these tests, and it starts empty."""
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, "SMS_BACKEND": "notifications.backends.sms.MemoryBackend"}
    sms.outbox.clear()
    yield sms.outbox
    sms.outbox.clear()


@pytest.fixture
def provider():
    fake = FakeTwilio()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def twilio_settings(settings, provider):
    settings.NOTIFICATIONS = {
        **settings.NOTIFICATIONS,
        "SMS_BACKEND": "notifications.backends.sms.TwilioBackend",
        "SMS_API_URL": provider.url,
        "SMS_ACCOUNT_SID": provider.account_sid,
        "SMS_AUTH_TOKEN": provider.auth_token,
        "SMS_FROM": "+15005550006",
        "SMS_TIMEOUT_SECONDS": 5,
    }
    return settings


_keys = iter(range(1, 10**9))


def submitted(*, kind="return_and_refund", reason="size_fit", customer=None, lines=None):
    """A request submitted through the channel (evaluation not run yet)."""
    kwargs = {"lines": lines or [("SKU-1", 1, "59.90")]}
    if customer is not None:
        kwargs.update(customer=customer, channel=customer.channel)
    order = OrderFactory(**kwargs)
    refund, _ = services.refund_submit(
        actor=Actor.for_channel(order.channel),
        channel=order.channel,
        idempotency_key=f"notify-{next(_keys)}",
        order_number=order.number,
        kind=kind,
        reason=reason,
    )
    return refund


def evaluated(**kwargs):
    refund = submitted(**kwargs)
    return services.refund_evaluate(refund_id=refund.pk)
