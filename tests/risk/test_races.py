"""Concurrent intakes of linked customers upsert the same profiles: no deadlock, no loss."""

import threading

import pytest
from django.db import connection, transaction

from config.actors import Actor
from refunds import services as refunds
from refunds.models import RefundRequest
from risk import tasks
from risk.models import RiskProfile
from tests.factories import ChannelFactory, CustomerFactory, OrderFactory

pytestmark = pytest.mark.postgres


@pytest.mark.django_db(transaction=True)
def test_linked_customers_submitting_at_once_both_get_scored(monkeypatch):
    from django_q.conf import Conf

    # Tasks only queue here: inline (sync) q2 in nine threads would race on its own result
    # rows, which is the test harness, not the code under test.
    monkeypatch.setattr(Conf, "SYNC", False)
    queued = []
    monkeypatch.setattr(
        "risk.services.enqueue_on_commit",
        lambda func, *args: transaction.on_commit(lambda: queued.append((func, args))),
    )
    channel = ChannelFactory()
    customers = [CustomerFactory(channel=channel, phone="+8613500000001") for _ in range(3)]
    orders = [OrderFactory(channel=channel, customer=c, lines=[("SKU-1", 1, "30.00")]) for c in customers for _ in range(3)]
    barrier = threading.Barrier(len(orders))
    errors = []

    def submit(o):
        try:
            barrier.wait()
            refund, _ = refunds.refund_submit(
                actor=Actor.for_channel(channel),
                channel=channel,
                idempotency_key=f"race-{o.pk}",
                order_number=o.number,
                kind="refund_only",
                reason="size_fit",
            )
            # The score is taken by the intake task (queued, not run, here): run it as a
            # worker would, racing the other threads' intakes and tasks.
            refunds.refund_evaluate(refund_id=refund.pk)
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(o,)) for o in orders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert RefundRequest.objects.filter(risk_score__isnull=False).count() == len(orders)
    # each intake saw only what was committed before it; the recompute it queued for after
    # its commit (run here as the worker would) leaves every profile with all nine requests
    assert sorted(args[0] for func, args in queued if func == "risk.tasks.recompute_customer") == sorted(
        o.customer_id for o in orders
    )
    for func, args in queued:
        if func == "risk.tasks.recompute_customer":
            tasks.recompute_customer(*args)
    assert list(RiskProfile.objects.order_by("customer_id").values_list("shared_phone_accounts", "requests_24h")) == [(2, 3)] * 3
