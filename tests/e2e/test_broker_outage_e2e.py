"""End to end: Redis (Q_BROKER=redis) is stopped while a channel and finance work. They get
their 2xx with the work saved; once Redis is back, a real `qcluster` runs the scheduled
sweepers, which decide the request and pay the payout whose tasks were lost.

The Redis server is this test's own, on a free port; the machine's Redis is not touched.
"""

import contextlib
import logging
import subprocess
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from importlib import import_module

import pytest
import redis
import requests
from django.apps import apps
from django.urls import reverse
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import Task

from config import q2
from config.actors import Actor
from config.settings import redis_url_with_timeouts
from refunds import services
from refunds.models import Payout, RefundRequest
from tests.api.conftest import make_channel, order_body
from tests.conftest import _cluster, free_port, wait_for
from tests.factories import OrderFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]


class RedisServer:
    """`redis-server` on a port of its own, stopped and started again by the test."""

    def __init__(self, tmp_path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = tmp_path
        self.proc = None
        self.log = None

    def start(self) -> None:
        self.log = open(self.dir / "redis.log", "ab")  # noqa: SIM115 - closed by stop()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.dir,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)

        def answers():
            with contextlib.suppress(redis.ConnectionError):
                return client.ping()

        wait_for(answers, timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        if self.log is not None:
            self.log.close()
        self.proc = self.log = None


@pytest.fixture
def own_redis(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def _pending_payout() -> Payout:
    """A refund-only request escalated and approved by support (tasks run inline here)."""
    order = OrderFactory(lines=[("SKU-1", 1, Decimal("30.00"))])
    refund, _ = services.refund_submit(
        actor=Actor.for_channel(order.channel),
        channel=order.channel,
        idempotency_key=f"outage-{order.pk}",
        order_number=order.number,
        kind="refund_only",
        reason="not_as_described",
    )
    approver = UserFactory(username="support-outage", role="support")
    services.refund_approve(refund_id=refund.pk, actor=Actor.for_user(approver))
    return Payout.objects.get(request=refund, state=Payout.State.PENDING_APPROVAL)


def test_work_saved_while_redis_was_down_is_done_by_the_sweepers_once_it_is_back(
    transactional_db, live_server, client, own_redis, subprocess_env, monkeypatch, tmp_path, caplog
):
    # The default policy and the sweepers' schedules, as the migration writes them.
    import_module("refunds.migrations.0002_defaults").create_defaults(apps, None)
    payout = _pending_payout()
    finance = UserFactory(username="finance-outage", role="finance")
    client.force_login(finance)

    # Tasks now go to our Redis, as deployed (its timeouts included) ... which stops.
    name = f"rdtest-{uuid.uuid4().hex[:8]}"
    deployed = redis_url_with_timeouts(own_redis.url, connect=1, read=2)
    for attr, value in {"SYNC": False, "ORM": None, "REDIS": deployed, "CLUSTER_NAME": name, "PREFIX": name}.items():
        monkeypatch.setattr(Conf, attr, value)
    monkeypatch.setattr(q2, "_brokers", {})
    own_redis.stop()

    _, key = make_channel("outage-shop")
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {key}"
    placed = timezone.now() - timedelta(days=8)
    body = order_body(
        placed_at=placed.isoformat(),
        lines=[{"sku": "SKU-1", "name": "Socks", "quantity": 1, "unit_price": "15.00"}],
        shipments=[
            {
                "carrier": "sf",
                "tracking_number": "SF-OUT-1",
                "shipped_at": (placed + timedelta(days=1)).isoformat(),
                "delivered_at": (timezone.now() - timedelta(days=5)).isoformat(),
            }
        ],
    )
    body["payment"]["amount"] = "15.00"
    started = time.monotonic()
    put = api.put(f"{live_server.url}/api/v1/orders/OUT-1/", json=body, timeout=10)
    post = api.post(
        f"{live_server.url}/api/v1/refunds/",
        json={"order_number": "OUT-1", "kind": "refund_only", "reason": "size_fit"},
        headers={"Idempotency-Key": "outage-1"},
        timeout=10,
    )
    url = reverse("admin:refunds_payout_approve", args=[payout.pk])
    digest = client.get(url).context["preview"].digest  # the confirmation page; its POST approves
    approve = client.post(url, {"confirm": "yes", "digest": digest})
    assert time.monotonic() - started < 5, "a stopped Redis refuses at once"

    assert put.status_code == 201, put.text
    assert post.status_code == 201, post.text
    assert post.json()["state"] == "submitted"
    assert approve.status_code == 302
    refund_id = post.json()["id"]
    payout.refresh_from_db()
    assert payout.state == Payout.State.APPROVED
    lost = [r.getMessage() for r in caplog.records if r.name == "config.q2" and r.levelno == logging.WARNING]
    assert any("refunds.tasks.refund_evaluate_task" in m and "ConnectionError" in m for m in lost), lost
    assert any("refunds.tasks.payout_execute_task" in m and "ConnectionError" in m for m in lost), lost

    # Redis is back; a cluster starts and its scheduler runs the sweepers (its first pass
    # comes some 30 s after the start). The work is a few seconds old: the cluster is told
    # to count it as stale after 5 s instead of a minute / two.
    own_redis.start()
    with _cluster(
        subprocess_env,
        monkeypatch,
        tmp_path,
        Q_BROKER="redis",
        REDIS_URL=own_redis.url,
        SUBMITTED_STALE_SECONDS="5",
        PAYOUT_STALE_SECONDS="5",
    ) as cluster:
        sweepers = {"refunds.tasks.sweep_submitted", "refunds.tasks.sweep_payouts"}

        def done():
            refund = RefundRequest.objects.get(pk=refund_id)
            payout.refresh_from_db()
            # The cluster's monitor saves a task's result after the task's own work committed:
            # wait for the sweepers' results too, or the check below can read them too early.
            saved = set(
                Task.objects.filter(cluster=Conf.CLUSTER_NAME, success=True, func__in=sweepers).values_list("func", flat=True)
            )
            return refund.state != RefundRequest.State.SUBMITTED and payout.state == Payout.State.SUCCEEDED and saved == sweepers

        waited = time.monotonic()
        try:
            wait_for(done, timeout=45, interval=0.5)
        except AssertionError:
            pytest.fail(cluster.log_path.read_text())
        waited = time.monotonic() - waited
        ran = set(Task.objects.filter(cluster=Conf.CLUSTER_NAME, success=True).values_list("func", flat=True))

    assert RefundRequest.objects.get(pk=refund_id).state == RefundRequest.State.READY_FOR_PAYOUT
    assert sweepers <= ran, ran
    assert not {"refunds.tasks.refund_evaluate_task", "refunds.tasks.payout_execute_task"} & ran, "those tasks were lost"
    print(f"the sweepers finished the work {waited:.1f} s after the cluster started")
    assert api.get(f"{live_server.url}/api/v1/refunds/{refund_id}/", timeout=10).json()["state"] == "ready_for_payout"
