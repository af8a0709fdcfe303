"""Staff roles as Django groups, with the permission matrix of spec/roles.md.

`sync_roles` is idempotent and runs after every `migrate`, so a fresh database has the
groups and a changed matrix reaches existing ones.
"""

from django.contrib.auth.models import Group, Permission
from django.db.models import Exists, OuterRef, Q

SUPPORT, WAREHOUSE, FINANCE, RISK = "support", "warehouse", "finance", "risk"
ROLES = [SUPPORT, WAREHOUSE, FINANCE, RISK]

# Two-factor sign-in (issue 18): required for these roles, because they move money, and for
# every superuser; the other roles may enrol, and once enrolled are asked for it too.
TWO_FACTOR_ROLES = [FINANCE]


def two_factor_required(user) -> bool:
    """Whether `user` must sign in with a second factor (superusers and TWO_FACTOR_ROLES)."""
    return user.is_superuser or user.groups.filter(name__in=TWO_FACTOR_ROLES).exists()


def two_factor_required_expression() -> Q:
    """The same rule as a condition on users, to be read in one query with other facts."""
    return Q(is_superuser=True) | Q(Exists(Group.objects.filter(user=OuterRef("pk"), name__in=TWO_FACTOR_ROLES)))


_READ_ORDERS = [
    "orders.view_order",
    "orders.view_orderline",
    "orders.view_customer",
    "orders.view_customermessage",
    "orders.view_shipment",
    "orders.view_trackingevent",
    "orders.view_addresschange",
    "orders.view_payment",
]

# Support and finance see the watch list and the signals; risk runs them (issue 5).
_RISK_READ = ["risk.view_watchlistentry", "risk.view_riskprofile"]
_RISK_MANAGE = [
    *_RISK_READ,
    "risk.add_watchlistentry",
    "risk.change_watchlistentry",
    "risk.manage_watchlist",
    "risk.view_risksettings",
    "risk.change_risksettings",
    # The audit log of what they may view (the risk settings, the policies) and the raises
    # of money limits waiting for an admin.
    "audit.view_auditentry",
    "audit.view_pendingchange",
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    SUPPORT: [
        *_READ_ORDERS,
        "refunds.view_refundrequest",
        "refunds.review_refundrequest",
        "refunds.create_for_customer",
        "refunds.record_verdict",
        "refunds.view_evidence",
        "refunds.view_refundevent",
        "refunds.view_returnparcel",
        "refunds.view_inspection",
        *_RISK_READ,
    ],
    WAREHOUSE: [
        "orders.view_orderline",
        "refunds.view_returnparcel",
        "refunds.receive_return",
        "refunds.view_inspection",
        "refunds.add_inspection",
    ],
    FINANCE: [
        *_READ_ORDERS,
        "refunds.view_refundrequest",
        "refunds.view_evidence",
        "refunds.view_payout",
        "refunds.approve_payout",
        "refunds.retry_payout",
        "refunds.export_payout",
        "refunds.reconcile_payout",
        "refunds.view_reconciliationrun",
        "refunds.view_reconciliationdifference",
        "refunds.view_payoutbatch",
        "refunds.view_refundevent",
        "refunds.view_walletentry",
        "refunds.view_coupon",
        # The four-eyes threshold, its log and its pending raises; admins change it.
        "refunds.view_payoutsettings",
        "audit.view_auditentry",
        "audit.view_pendingchange",
        *_RISK_READ,
    ],
    RISK: [
        *_READ_ORDERS,
        "refunds.view_refundrequest",
        "refunds.view_evidence",
        "refunds.record_verdict",
        "refunds.view_refundpolicy",
        "refunds.change_refundpolicy",
        "refunds.view_refundevent",
        *_RISK_MANAGE,
    ],
}


def sync_roles(**kwargs) -> None:
    """Create the role groups and give each exactly the permissions of the matrix."""
    for role, codes in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        perms = []
        for code in codes:
            app_label, codename = code.split(".", 1)
            perm = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if perm is not None:
                perms.append(perm)
        group.permissions.set(perms)
