"""The role home pages and the Chinese admin."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from refunds.models import RefundRequest
from tests.factories import PayoutFactory, RefundRequestFactory

pytestmark = pytest.mark.django_db

State = RefundRequest.State


def _home(client, user):
    client.force_login(user)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    return response.content.decode()


def test_support_home_counts_its_queues_with_the_oldest_age(client, support_user):
    old = RefundRequestFactory(state=State.UNDER_REVIEW)
    RefundRequest.objects.filter(pk=old.pk).update(state_changed_at=timezone.now() - timedelta(days=3, hours=2))
    RefundRequestFactory(state=State.UNDER_REVIEW)
    RefundRequestFactory(state=State.READY_FOR_PAYOUT)

    body = _home(client, support_user)

    section = body[body.index('id="role-home"') :]
    assert re.search(r"Under review</span>\s*<span class=\"n\">2</span>", section)
    assert re.search(r"Awaiting customer</span>\s*<span class=\"n\">0</span>", section)
    assert "oldest waits 3d 2h" in section
    assert reverse("admin:refunds_refundrequest_changelist") + "?queue=under_review" in section
    assert "Warehouse" not in section and "Finance" not in section


def test_warehouse_home_shows_parcel_queues_only(client, warehouse_user):
    RefundRequestFactory(state=State.AWAITING_RETURN)
    body = _home(client, warehouse_user)
    section = body[body.index('id="role-home"') :]
    assert re.search(r"Awaiting return</span>\s*<span class=\"n\">1</span>", section)
    assert "Received" in section
    assert "Under review" not in section


def test_finance_home_links_to_pending_and_failed_payouts(client, finance_user):
    PayoutFactory()
    body = _home(client, finance_user)
    section = body[body.index('id="role-home"') :]
    assert re.search(r"Pending approval</span>\s*<span class=\"n\">1</span>", section)
    assert "?state=failed" in section and "?state=outcome_unknown" in section


@pytest.mark.parametrize(
    ("role", "reports"),
    [
        ("risk", ["admin:risk_report"]),
        ("finance", ["admin:refunds_payout_reconciliation"]),
        ("support", []),
        ("warehouse", []),
    ],
)
def test_home_links_to_the_reports_the_role_may_open(client, role_user, role, reports):
    body = _home(client, role_user(role))
    links = re.findall(r'<p id="staff-reports">(.*?)</p>', body)
    found = re.findall(r'href="([^"]+)"', links[0]) if links else []
    assert found == [reverse(name) for name in reports]
    for url in found:
        assert client.get(url).status_code == 200


def test_home_shows_the_unread_staff_inbox_count(client, support_user):
    from notifications.services import notify_staff

    refund = RefundRequestFactory(state=State.UNDER_REVIEW)
    notify_staff(role="support", event="refund_escalated", refund=refund, context={"reason": "x"})
    body = _home(client, support_user)
    assert re.search(r"1 unread message", body)


def test_language_switch_turns_the_admin_chinese(client, support_user):
    RefundRequestFactory(state=State.UNDER_REVIEW)
    client.force_login(support_user)
    page = client.get(reverse("admin:index")).content.decode()
    assert 'id="language-switch"' in page

    client.post(reverse("set_language"), {"language": "zh-hans", "next": "/admin/"})
    home = client.get(reverse("admin:index")).content.decode()
    queue = client.get(reverse("admin:refunds_refundrequest_changelist")).content.decode()

    assert "退款工作台" in home and "审核中" in home
    assert "客服队列（审核中、等待客户）" in queue and "升级原因" in queue


MY_SOURCES = (
    "orders/admin.py",
    "orders/masking.py",
    "refunds/admin/requests.py",
    "refunds/admin/warehouse.py",
    "refunds/selectors.py",
    "refunds/templates/admin/refunds/refundrequest/",
    "refunds/templates/admin/refunds/returnparcel/",
    "config/templates/admin/",
)


def test_every_string_of_the_support_and_warehouse_screens_has_a_chinese_translation():
    po = Path(settings.BASE_DIR / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po").read_text()
    missing = []
    for block in po.split("\n\n")[1:]:
        refs = " ".join(re.findall(r"^#: (.*)$", block, re.M))
        if not any(src in refs for src in MY_SOURCES) or "#, fuzzy" in block:
            if "#, fuzzy" in block and any(src in refs for src in MY_SOURCES):
                missing.append(block)
            continue
        if re.search(r'^msgstr(\[0\])? ""\Z', block.strip(), re.M):
            missing.append(block)
    assert not missing, "\n\n".join(missing)
    assert (settings.BASE_DIR / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.mo").exists()


def test_risk_home_counts_active_watch_list_entries_and_escalations(client, risk_user):
    from risk.models import WatchlistEntry
    from tests.factories import CustomerFactory

    WatchlistEntry.objects.create(customer=CustomerFactory(), reason="manual", source="manual")
    WatchlistEntry.objects.create(customer=CustomerFactory(), reason="manual", source="manual", removed_at=timezone.now())
    RefundRequestFactory(state=State.UNDER_REVIEW)
    body = _home(client, risk_user)
    section = body[body.index('id="role-home"') :]
    assert re.search(r"Active watch-list entries</span>\s*<span class=\"n\">1</span>", section)
    assert re.search(r"Escalated, under review</span>\s*<span class=\"n\">1</span>", section)
    assert reverse("admin:risk_watchlistentry_changelist") in section
