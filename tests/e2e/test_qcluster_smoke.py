import io

import openpyxl
import pytest
from django.urls import reverse

from config.actors import Actor
from refunds import services
from refunds.models import Export, Payout, RefundRequest
from tests.conftest import _cluster, wait_for
from tests.factories import OrderFactory, RefundRequestFactory, UserFactory

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


def test_a_real_cluster_writes_a_big_export_the_user_downloads(
    transactional_db, subprocess_env, monkeypatch, tmp_path, settings, client
):
    """Over EXPORT_INLINE_MAX_ROWS the screen queues the export with its per-task timeout;
    a real cluster (sharing MEDIA_ROOT) writes the file, and the requester downloads it."""
    settings.EXPORT_INLINE_MAX_ROWS = 2
    settings.MEDIA_ROOT = tmp_path / "media"
    request = RefundRequestFactory(state=RefundRequest.State.READY_FOR_PAYOUT)
    Payout.objects.bulk_create(
        [Payout(request=request, method="original_payment", amount=f"{i}.00", currency="CNY") for i in range(1, 6)]
    )
    user = UserFactory(username="finance-e2e", role="finance")
    client.force_login(user)
    with _cluster(subprocess_env, monkeypatch, tmp_path, MEDIA_ROOT=str(settings.MEDIA_ROOT)) as proc:
        response = client.get(reverse("admin:refunds_payout_export", args=["xlsx"]))
        assert response.status_code == 302
        export = wait_for(lambda: Export.objects.filter(state__in=["done", "failed"]).first(), timeout=20)
        assert export.state == Export.State.DONE, (export.error, proc.log_path.read_text())
    download = client.get(reverse("admin:refunds_export_download", args=[export.pk]))
    rows = list(openpyxl.load_workbook(io.BytesIO(b"".join(download.streaming_content)), read_only=True).active.values)
    assert export.rows == 5 and [r[6] for r in rows[1:]] == [1, 2, 3, 4, 5]
