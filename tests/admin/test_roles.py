"""The role groups a fresh database has, against spec/roles.md."""

import pytest
from django.contrib.auth.models import Group, Permission

from refunds.roles import ROLE_PERMISSIONS, sync_roles

pytestmark = pytest.mark.django_db


def test_every_code_in_the_matrix_is_a_real_permission():
    # sync_roles skips codes it can't find; a typo would silently take a right away.
    missing = []
    for role, codes in ROLE_PERMISSIONS.items():
        for code in codes:
            app_label, codename = code.split(".", 1)
            if not Permission.objects.filter(content_type__app_label=app_label, codename=codename).exists():
                missing.append(f"{role}: {code}")
    assert not missing


def test_a_fresh_database_has_the_groups_with_exactly_the_matrix():
    for role, codes in ROLE_PERMISSIONS.items():
        group = Group.objects.get(name=role)
        have = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
        assert have == set(codes), role


def test_sync_roles_takes_away_a_permission_added_by_hand():
    group = Group.objects.get(name="warehouse")
    group.permissions.add(Permission.objects.get(codename="approve_payout"))
    sync_roles()
    assert not group.permissions.filter(codename="approve_payout").exists()


MATRIX = {
    # roles.md row → permission → roles that have it
    "review (approve/reject/ask/offer)": ("refunds.review_refundrequest", {"support"}),
    "create a request for a customer": ("refunds.create_for_customer", {"support"}),
    "receive and inspect returns": ("refunds.receive_return", {"warehouse"}),
    "approve payouts": ("refunds.approve_payout", {"finance"}),
    "retry payouts": ("refunds.retry_payout", {"finance"}),
    "export for reconciliation": ("refunds.export_payout", {"finance"}),
    "edit policy rules": ("refunds.change_refundpolicy", {"risk"}),
    "see orders": ("orders.view_order", {"support", "finance", "risk"}),
    "see customers": ("orders.view_customer", {"support", "finance", "risk"}),
    "see messages": ("orders.view_customermessage", {"support", "finance", "risk"}),
    "see order lines": ("orders.view_orderline", {"support", "warehouse", "finance", "risk"}),
    "read the evidence": ("refunds.view_evidence", {"support", "finance", "risk"}),
    "manage the watch list": ("risk.manage_watchlist", {"risk"}),
    "see the watch list": ("risk.view_watchlistentry", {"support", "finance", "risk"}),
    "edit channels and keys": ("orders.change_channel", set()),
}


@pytest.mark.parametrize("row", list(MATRIX))
def test_roles_md_rows(row):
    from tests.factories import UserFactory

    perm, roles = MATRIX[row]
    for role in ROLE_PERMISSIONS:
        user = UserFactory(username=f"{role}-{perm}", role=role)
        assert user.has_perm(perm) is (role in roles), f"{role} / {row}"
