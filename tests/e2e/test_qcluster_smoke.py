import pytest

from orders.actors import Actor
from refunds import services
from refunds.models import RefundRequest
from tests.conftest import wait_for
from tests.factories import OrderFactory

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]


@pytest.mark.parametrize("cluster", ["qcluster", "qcluster_on_redis"])
def test_a_real_cluster_evaluates_a_submitted_request(cluster, transactional_db, request):
    """On the ORM broker the intake statement queues the task; on Redis, the service after
    commit. Either way a real cluster picks it up."""
    qcluster = request.getfixturevalue(cluster)
    order = OrderFactory(lines=[("SKU-1", 1, "15.00")])
    refund, _ = services.refund_submit(
        actor=Actor.for_channel(order.channel),
        channel=order.channel,
        idempotency_key="e2e-1",
        order_number=order.number,
        kind="refund_only",
        reason="size_fit",
    )
    state = wait_for(lambda: RefundRequest.objects.filter(pk=refund.pk, state="ready_for_payout").exists(), timeout=10)
    assert state, qcluster.log_path.read_text()
