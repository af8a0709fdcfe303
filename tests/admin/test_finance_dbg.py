import pytest
from tests.admin.test_finance import bulk_payouts, CHANGELIST
from refunds.models import Payout
pytestmark = pytest.mark.django_db
def test_dbg(client, finance_user):
    bulk_payouts(2)
    print(list(Payout.objects.values("state", "created_at")))
    client.force_login(finance_user)
    r = client.get(CHANGELIST)
    cl = r.context["cl"]
    print(cl.queryset.query, cl.result_count)
