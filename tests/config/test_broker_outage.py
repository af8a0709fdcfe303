"""A broker outage after commit: the work is saved, so the client gets its 2xx, the lost
task is logged, and the sweeper does the work later.

The broker fails at its edge: on Redis, a port nothing listens on (a real
`redis.ConnectionError`) or a server that accepts and never answers (a real timeout); on the
ORM broker, its `enqueue` raising `OperationalError`. The tests are transactional, so the
after-commit enqueue runs inside the request, as in production, where it used to turn the
answer into a 500.
"""

import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import OperationalError
from django.urls import reverse
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from rest_framework.test import APIClient

from config import q2
from config.actors import Actor
from orders.models import Order
from refunds import services
from refunds.models import Export, Payout, RefundRequest
from refunds.tasks import sweep_exports, sweep_payouts, sweep_submitted
from risk.models import RiskProfile
from risk.tasks import recompute_all
from tests.admin.conftest import confirm_approval
from tests.api.conftest import make_channel, order_body
from tests.conftest import BASE_DIR, free_port
from tests.factories import OrderFactory, PayoutFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _redis_url_as_deployed(port: int) -> str:
    """django-q2's Redis setting as config/settings.py makes it from REDIS_URL (timeouts included)."""
    env = {
        **os.environ,
        "Q_BROKER": "redis",
        "REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
    }
    code = "import django; django.setup(); from django_q.conf import Conf; print(Conf.REDIS)"
    done = subprocess.run([sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _use_redis(monkeypatch, url: str) -> None:
    name = f"rdtest-{uuid.uuid4().hex[:8]}"
    for attr, value in {"SYNC": False, "ORM": None, "REDIS": url, "CLUSTER_NAME": name, "PREFIX": name}.items():
        monkeypatch.setattr(Conf, attr, value)
    monkeypatch.setattr(q2, "_brokers", {})


class Outage:
    """`down()`: tasks go to a broker (not inline) that refuses every enqueue, with
    `refusal` the error it raises. `back()`: the broker is up again (tasks run inline)."""

    def __init__(self, kind: str, monkeypatch):
        self.kind, self.monkeypatch = kind, monkeypatch
        self.refusal = "ConnectionError" if kind == "redis" else "OperationalError"
        self.saved = {attr: getattr(Conf, attr) for attr in ("ORM", "REDIS", "CLUSTER_NAME", "PREFIX")}
        self.enqueue = ORM.enqueue

    def down(self) -> None:
        if self.kind == "redis":
            _use_redis(self.monkeypatch, f"redis://127.0.0.1:{free_port()}/0?socket_connect_timeout=1&socket_timeout=2")
            return

        def enqueue(broker, package):
            raise OperationalError("server closed the connection unexpectedly")

        self.monkeypatch.setattr(Conf, "SYNC", False)
        self.monkeypatch.setattr(Conf, "ORM", "default")
        self.monkeypatch.setattr(ORM, "enqueue", enqueue)

    def back(self) -> None:
        for attr, value in self.saved.items():
            self.monkeypatch.setattr(Conf, attr, value)
        self.monkeypatch.setattr(ORM, "enqueue", self.enqueue)
        self.monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture(params=["redis", "orm"])
def outage(request, monkeypatch):
    return Outage(request.param, monkeypatch)


def _lost(caplog, func: str, refusal: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "config.q2" and r.levelno == logging.WARNING and func in r.getMessage() and refusal in r.getMessage()
    ]


@pytest.fixture
def api():
    channel, key = make_channel("shop")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    client.channel = channel
    return client


def test_put_order_answers_201_with_the_order_saved_and_the_nightly_recompute_scores_it(api, outage, caplog):
    outage.down()
    response = api.put("/api/v1/orders/MKT-1/", order_body(), format="json")

    assert response.status_code == 201, response.content
    order = Order.objects.get(channel=api.channel, number="MKT-1")
    assert order.paid_total == Decimal("59.90")
    assert _lost(caplog, "risk.tasks.recompute_customer", outage.refusal)
    assert not RiskProfile.objects.filter(customer=order.customer).exists(), "the recompute was lost, not run"

    outage.back()
    recompute_all()  # what its nightly schedule runs
    assert RiskProfile.objects.get(customer=order.customer).orders_90d == 1


def test_post_refund_answers_201_with_the_request_saved_and_the_sweeper_decides_it(api, outage, caplog, settings):
    order = OrderFactory(channel=api.channel, lines=[("SKU-1", 1, "15.00")])
    outage.down()

    response = api.post(
        "/api/v1/refunds/",
        {"order_number": order.number, "kind": "refund_only", "reason": "size_fit"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="outage-1",
    )

    assert response.status_code == 201, response.content
    assert response.json()["state"] == "submitted"
    refund = RefundRequest.objects.get(pk=response.json()["id"])
    assert (refund.state, refund.amount_requested) == ("submitted", Decimal("15.00"))
    order.refresh_from_db()
    assert order.held_total == Decimal("15.00")
    assert _lost(caplog, "refunds.tasks.refund_evaluate_task", outage.refusal)

    # The same key again answers the same request: the outage made no second one.
    again = api.post(
        "/api/v1/refunds/",
        {"order_number": order.number, "kind": "refund_only", "reason": "size_fit"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="outage-1",
    )
    assert (again.status_code, again.json()["id"]) == (200, refund.pk)
    assert RefundRequest.objects.count() == 1

    outage.back()
    assert sweep_submitted() == 0, "too fresh: its task may still be coming"
    RefundRequest.objects.filter(pk=refund.pk).update(
        created_at=timezone.now() - timedelta(seconds=settings.REFUND_DESK["SUBMITTED_STALE_SECONDS"] + 1)
    )
    assert sweep_submitted() == 1
    refund.refresh_from_db()
    assert refund.state == RefundRequest.State.READY_FOR_PAYOUT


def _pending_payout(price: str) -> Payout:
    """A refund-only request escalated and approved by support, with its pending payout."""
    order = OrderFactory(lines=[("SKU-1", 1, Decimal(price))])
    refund, _ = services.refund_submit(
        actor=Actor.for_channel(order.channel),
        channel=order.channel,
        idempotency_key=f"out-{order.pk}",
        order_number=order.number,
        kind="refund_only",
        reason="not_as_described",
    )
    if RefundRequest.objects.filter(pk=refund.pk, state=RefundRequest.State.SUBMITTED).exists():
        services.refund_evaluate(refund_id=refund.pk)  # unless its task already ran inline
    approver = UserFactory(username=f"support-{order.pk}", role="support")
    services.refund_approve(refund_id=refund.pk, actor=Actor.for_user(approver))
    return Payout.objects.get(request=refund, state=Payout.State.PENDING_APPROVAL)


def test_finance_approves_with_success_while_the_broker_is_down_and_the_sweeper_pays(
    client, finance_user, outage, caplog, settings
):
    one, bulk = _pending_payout("20.00"), _pending_payout("30.00")
    client.force_login(finance_user)
    outage.down()

    single = confirm_approval(client, client.get(reverse("admin:refunds_payout_approve", args=[one.pk])))
    batch = confirm_approval(
        client,
        client.post(
            reverse("admin:refunds_payout_changelist"),
            {"action": "approve_selected", "_selected_action": [bulk.pk], "index": 0, "select_across": 0},
        ),
    )

    assert single.status_code == batch.status_code == 200
    said = [str(m) for r in (single, batch) for m in r.context["messages"]]
    assert f"{one} approved; it is being paid." in said
    assert any("Approved 1 payout" in m for m in said), said
    assert set(Payout.objects.filter(pk__in=[one.pk, bulk.pk]).values_list("state", flat=True)) == {"approved"}
    assert _lost(caplog, "refunds.tasks.payout_execute_task", outage.refusal)
    assert _lost(caplog, "refunds.tasks.payout_execute_batch_task", outage.refusal)

    outage.back()
    Payout.objects.update(approved_at=timezone.now() - timedelta(seconds=settings.REFUND_DESK["PAYOUT_STALE_SECONDS"] + 1))
    assert sweep_payouts() == 2
    assert set(Payout.objects.filter(pk__in=[one.pk, bulk.pk]).values_list("state", flat=True)) == {"succeeded"}
    assert RefundRequest.objects.filter(state=RefundRequest.State.REFUNDED).count() == 2


def test_a_big_export_is_recorded_while_the_broker_is_down_and_the_sweeper_queues_it_again(
    client, finance_user, outage, caplog, settings, tmp_path
):
    settings.EXPORT_INLINE_MAX_ROWS = 1
    settings.MEDIA_ROOT = tmp_path
    PayoutFactory.create_batch(2)
    client.force_login(finance_user)
    outage.down()

    response = client.get(reverse("admin:refunds_payout_export", args=["csv"]))

    assert response.status_code == 302
    export = Export.objects.get()
    assert export.state == Export.State.QUEUED
    assert _lost(caplog, "refunds.tasks.export_write_task", outage.refusal)

    outage.back()
    assert sweep_exports() == 0, "too fresh: its task may still be coming"
    Export.objects.update(created_at=timezone.now() - timedelta(minutes=3))
    assert sweep_exports() == 1
    export.refresh_from_db()
    assert export.state == Export.State.DONE


def test_the_reconciliation_button_says_its_check_could_not_be_queued(client, finance_user, outage, caplog):
    """It saves nothing before the run starts, so no sweeper would find it: no false success."""
    client.force_login(finance_user)
    outage.down()
    day = timezone.localdate() - timedelta(days=1)

    response = client.post(reverse("admin:refunds_payout_reconciliation"), {"day": day.isoformat()}, follow=True)

    assert response.status_code == 200
    said = [str(m) for m in response.context["messages"]]
    assert said == [f"{day} could not be queued for checking: the background queue is unreachable. Try again in a few minutes."]
    assert _lost(caplog, "refunds.tasks.reconciliation_run_task", outage.refusal)


@pytest.fixture
def hung_redis():
    """A TCP port that accepts connections (the kernel's backlog) and never answers. After
    20 s it closes, so that a client without timeouts fails the test instead of hanging it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    stop = threading.Timer(20, server.close)
    stop.start()
    yield server.getsockname()[1]
    stop.cancel()
    server.close()


def test_a_hung_redis_holds_the_request_no_longer_than_the_deployed_timeouts(api, hung_redis, monkeypatch, caplog):
    _use_redis(monkeypatch, _redis_url_as_deployed(hung_redis))

    started = time.monotonic()
    response = api.put("/api/v1/orders/MKT-1/", order_body(), format="json")
    took = time.monotonic() - started

    assert response.status_code == 201, response.content
    assert Order.objects.filter(channel=api.channel, number="MKT-1").exists()
    assert _lost(caplog, "risk.tasks.recompute_customer", "TimeoutError")
    assert took < 5, f"the request waited {took:.1f} s on a hung Redis"
