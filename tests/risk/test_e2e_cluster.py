"""customer_changed through a real django-q2 cluster (PostgreSQL)."""

import pytest

from risk import services
from risk.models import RiskProfile, WatchlistEntry
from tests.conftest import wait_for
from tests.factories import CustomerFactory

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]


def test_a_real_cluster_recomputes_a_changed_customer_and_lists_a_ring(qcluster):
    a, b, c = (CustomerFactory(phone="+8613600000001") for _ in range(3))
    services.customer_changed(customer_id=a.pk)  # no transaction open: queued at once
    assert wait_for(lambda: RiskProfile.objects.filter(customer=a, shared_phone_accounts=2).exists(), timeout=15), (
        qcluster.log_path.read_text()
    )
    assert set(WatchlistEntry.objects.values_list("customer_id", flat=True)) == {a.pk, b.pk, c.pk}
