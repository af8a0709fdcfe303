"""Notifications with a real `manage.py qcluster` on PostgreSQL and a local fake Twilio.

The cluster is a child process: it reads the SMS backend, the provider's URL and the short
test back-off from the environment (`subprocess_env` below).
"""

import contextlib
import importlib
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.apps import apps
from django.db import transaction

from config.actors import Actor
from config.q2 import enqueue_on_commit
from notifications import selectors, services
from notifications.models import Notification, SlaBreach, SlaLimit
from refunds import services as refunds
from refunds.models import RefundRequest, ReturnParcel
from tests.conftest import BASE_DIR, wait_for
from tests.factories import CustomerFactory, OrderFactory, RefundRequestFactory
from tests.notifications.fake_provider import FakeTwilio

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]
S = Notification.Status


@pytest.fixture
def provider():
    fake = FakeTwilio(fail_rate=0.0, seed=20261126)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def cluster_settings(provider):
    return {
        "NOTIFY_SMS_BACKEND": "notifications.backends.sms.TwilioBackend",
        "NOTIFY_SMS_API_URL": provider.url,
        "NOTIFY_SMS_ACCOUNT_SID": provider.account_sid,
        "NOTIFY_SMS_AUTH_TOKEN": provider.auth_token,
        "NOTIFY_SMS_FROM": "+15005550006",
        "NOTIFY_SMS_TIMEOUT": "5",
        "NOTIFY_BACKOFF_SECONDS": "0.05",
        "NOTIFY_BACKOFF_MAX_SECONDS": "0.4",
        "NOTIFY_MAX_ATTEMPTS": "25",
        "NOTIFY_STUCK_SENDING_SECONDS": "2",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "Q_WORKERS": "4",
        # Keep each worker's database connection between tasks: with the default of 0,
        # django-q2's close_old_connections() reconnects before every task.
        "DB_CONN_MAX_AGE": "60",
    }


@pytest.fixture
def subprocess_env(subprocess_env, cluster_settings):
    return {**subprocess_env, **cluster_settings}


@pytest.fixture
def seeded(transactional_db, settings):
    """Transactional tests flush the tables the data migration filled; put the templates back."""
    importlib.import_module("notifications.migrations.0003_defaults").seed(apps, None)
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, "CUSTOMER_CHANNELS": ["sms"]}


def start_cluster(env: dict, log_path) -> subprocess.Popen:
    from django_q.conf import Conf

    log = open(log_path, "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=BASE_DIR, env={**env, "Q_CLUSTER_NAME": Conf.CLUSTER_NAME}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    time.sleep(1.5)
    assert proc.poll() is None, log_path.read_text()
    return proc


def stop_cluster(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def a_refund(phone="+8613800138000"):
    customer = CustomerFactory(phone=phone, email="", language="en")
    return RefundRequestFactory(order=OrderFactory(customer=customer, channel=customer.channel))


def assert_each_delivered_once(provider, rows):
    """Each row reached a phone exactly once, and its key came again only after a failure."""
    delivered = provider.deliveries_by_key()
    assert delivered == {row.idempotency_key: 1 for row in rows}
    for row in rows:
        key = row.idempotency_key
        assert provider.requests_for(key) == provider.failures_for(key) + 1, (key, provider.outcomes[key])
        assert row.attempts == provider.requests_for(key), (key, row.attempts, provider.outcomes[key])
        assert row.provider_message_id == provider.sid_by_key[key]


def test_a_thousand_messages_through_a_provider_failing_30_percent_all_arrive_once(seeded, provider, qcluster):
    provider.fail_rate = 0.3
    refund = a_refund()
    started = time.monotonic()
    with transaction.atomic():
        for _ in range(1000):
            services.notify_customer(refund=refund, event="refund_approved")
    print(f"\nwritten and enqueued in {time.monotonic() - started:.1f} s")

    def all_settled():
        return not Notification.objects.filter(channel="sms").exclude(status__in=[S.SENT, S.DEAD]).exists()

    wait_for(all_settled, timeout=90, interval=0.5)
    elapsed = time.monotonic() - started
    rows = list(Notification.objects.filter(channel="sms"))
    assert len(rows) == 1000
    assert {row.status for row in rows} == {S.SENT}, qcluster.log_path.read_text()[-3000:]
    assert_each_delivered_once(provider, rows)
    failures = sum(provider.failures_for(row.idempotency_key) for row in rows)
    ambiguous = sum(o.endswith("+500") for row in rows for o in provider.outcomes[row.idempotency_key])
    # the chaos really happened: about 30 % of first attempts, half of them after the SMS went out
    assert failures > 250 and ambiguous > 100, (failures, ambiguous)
    print(f"\n1000 notifications, {failures} failed requests ({ambiguous} after delivery), all sent in {elapsed:.1f} s")


def test_a_worker_killed_mid_send_neither_loses_nor_duplicates_the_message(seeded, provider, qcluster, subprocess_env, tmp_path):
    blocked_phone = "+8613800138999"
    provider.block_to = blocked_phone
    others = [services.notify_customer(refund=a_refund(f"+86138001380{i:02d}"), event="refund_approved")[0] for i in range(10)]
    (victim,) = services.notify_customer(refund=a_refund(blocked_phone), event="refund_approved")

    # the provider has accepted (and delivered) the victim's SMS but holds back the answer
    assert provider.blocked.wait(timeout=15), qcluster.log_path.read_text()
    wait_for(lambda: Notification.objects.filter(pk__in=[o.pk for o in others], status=S.SENT).count() == 10, timeout=15)
    os.killpg(qcluster.pid, signal.SIGKILL)
    qcluster.wait(timeout=10)
    provider.release.set()
    victim.refresh_from_db()
    assert victim.status == S.SENDING  # the worker died before it could record anything

    fresh = start_cluster(subprocess_env, tmp_path / "fresh-cluster.log")
    try:
        time.sleep(2.1)  # NOTIFY_STUCK_SENDING_SECONDS
        enqueue_on_commit("notifications.tasks.sweep_outbox")  # what the schedule does every minute
        wait_for(lambda: Notification.objects.filter(pk=victim.pk, status=S.SENT).exists(), timeout=20)
    finally:
        stop_cluster(fresh)

    victim.refresh_from_db()
    key = victim.idempotency_key
    assert provider.outcomes[key] == ["ok", "duplicate"]  # sent again, answered from the first delivery
    assert provider.deliveries_by_key()[key] == 1
    assert victim.attempts == 2
    assert victim.provider_message_id == provider.sid_by_key[key]
    rows = Notification.objects.filter(channel="sms").exclude(pk=victim.pk)
    assert {row.status for row in rows} == {S.SENT}
    assert all(provider.outcomes[row.idempotency_key] == ["ok"] for row in rows)


def test_no_message_for_a_rolled_back_transaction_reaches_the_provider(seeded, provider, qcluster):
    refund = a_refund()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.notify_customer(refund=refund, event="refund_approved")
        raise RuntimeError("the state change failed")
    (marker,) = services.notify_customer(refund=refund, event="refund_paid", context={"amount": "59.90", "method": "Alipay"})
    wait_for(lambda: Notification.objects.filter(pk=marker.pk, status=S.SENT).exists(), timeout=10)
    time.sleep(0.5)  # anything queued before the marker has had its turn
    assert Notification.objects.count() == 1
    assert [m["key"] for m in provider.delivered] == [marker.idempotency_key]


def test_warehouse_scan_reaches_finance_and_the_customer_within_two_seconds(seeded, provider, qcluster, warehouse, finance_user):
    order = OrderFactory(customer=CustomerFactory(phone="+8613800138000", email="", language="en"), lines=[("SKU-1", 1, "59.90")])
    refund, _ = refunds.refund_submit(
        actor=Actor.for_channel(order.channel), channel=order.channel, idempotency_key="e2e-scan",
        order_number=order.number, kind="return_and_refund", reason="size_fit",
    )  # fmt: skip
    wait_for(lambda: RefundRequest.objects.filter(pk=refund.pk, state="awaiting_return").exists(), timeout=10)
    code = ReturnParcel.objects.get(request=refund).return_code
    unread_before = selectors.unread_count_for(finance_user)

    scanned = time.monotonic()
    refunds.return_receive(code=code, actor=warehouse)

    inbox = selectors.staff_inbox_for(finance_user).filter(refund=refund, event="parcel_received")
    assert inbox.exists()  # written with the scan itself
    assert selectors.unread_count_for(finance_user) == unread_before + 1
    sms = Notification.objects.filter(refund=refund, event="parcel_received", channel="sms")
    wait_for(lambda: sms.filter(status=S.SENT).exists(), timeout=2.0)
    elapsed = time.monotonic() - scanned
    delivered = [m for m in provider.delivered if m["key"] == sms.get().idempotency_key]
    assert len(delivered) == 1
    assert delivered[0]["to"] == "+8613800138000"
    assert (
        delivered[0]["body"] == f"We received your returned parcel for {refund.number}. We will check it and refund you shortly."
    )
    assert elapsed < 2.0
    print(f"\nscan → finance inbox at once, customer SMS at the provider after {elapsed:.2f} s")


def test_sla_sweeps_run_by_the_cluster_alert_once(seeded, qcluster, support_user):
    from django_q.models import Success

    SlaLimit.objects.filter(state="under_review").update(role="support", alert_after_minutes=60, escalate_after_minutes=600)
    refund = RefundRequestFactory(state="under_review")
    RefundRequest.objects.filter(pk=refund.pk).update(state_changed_at=refund.state_changed_at - timedelta(minutes=90))

    for _ in range(3):
        enqueue_on_commit("refunds.tasks.sla_sweep")
    wait_for(lambda: Success.objects.filter(func="refunds.tasks.sla_sweep").count() == 3, timeout=15)

    assert sorted(Success.objects.filter(func="refunds.tasks.sla_sweep").values_list("result", flat=True)) == [0, 0, 1]
    assert SlaBreach.objects.filter(refund=refund).count() == 1
    assert list(selectors.staff_inbox_for(support_user).filter(event="sla_breached").values_list("refund_id", flat=True)) == [
        refund.pk
    ]
