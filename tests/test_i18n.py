"""The Simplified Chinese admin: a complete catalogue, compiled, and Chinese on every area's screens."""

import ast
import gettext
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from notifications.services import notify_staff
from refunds.models import RefundRequest
from risk.models import RiskProfile, RiskSettings, WatchlistEntry
from tests.factories import CustomerFactory, PayoutFactory, RefundRequestFactory

CATALOGUE = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES"


def _entries(po_text: str) -> list[dict]:
    """The .po's entries as {"flags", "msgid", "msgid_plural", "msgstr": [...], "obsolete"} (header skipped)."""
    entries = []
    for block in po_text.strip().split("\n\n"):
        entry = {"flags": set(), "msgstr": [], "obsolete": False, "msgid_plural": None}
        key = None
        for line in block.splitlines():
            if line.startswith("#~"):
                entry["obsolete"] = True
            elif line.startswith("#,"):
                entry["flags"] |= {flag.strip() for flag in line[2:].split(",")}
            elif line.startswith("#"):
                continue
            elif match := re.match(r"^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?) (\".*\")$", line):
                key, value = match[1], ast.literal_eval(match[2])
                if key.startswith("msgstr"):
                    entry["msgstr"].append(value)
                else:
                    entry[key] = value
            elif line.startswith('"'):
                if key.startswith("msgstr"):
                    entry["msgstr"][-1] += ast.literal_eval(line)
                else:
                    entry[key] += ast.literal_eval(line)
        if entry.get("msgid"):
            entries.append(entry)
    return entries


def test_the_parser_sees_empty_fuzzy_and_multiline_entries():
    po = (
        'msgid ""\nmsgstr ""\n"Language: zh_Hans\\n"\n\n'
        '#: a.py:1\nmsgid "Done"\nmsgstr ""\n\n'
        '#: a.py:2\n#, fuzzy, python-format\nmsgid "%(n)d left"\nmsgstr "剩 %(n)d"\n\n'
        '#: a.py:3\nmsgid ""\n"two "\n"lines"\nmsgstr ""\n"两"\n"行"\n'
    )
    done, left, two = _entries(po)
    assert done["msgstr"] == [""]
    assert "fuzzy" in left["flags"] and "python-format" in left["flags"]
    assert two["msgid"] == "two lines" and two["msgstr"] == ["两行"]


def test_every_message_of_the_chinese_catalogue_is_translated_and_reviewed():
    entries = _entries((CATALOGUE / "django.po").read_text(encoding="utf-8"))
    assert len(entries) > 500  # the whole staff interface, not a stub
    untranslated = [e["msgid"] for e in entries if not e["obsolete"] and not all(e["msgstr"])]
    fuzzy = [e["msgid"] for e in entries if not e["obsolete"] and "fuzzy" in e["flags"]]
    assert untranslated == [], "untranslated: " + "; ".join(untranslated)
    assert fuzzy == [], "fuzzy (check the translation, then drop the flag): " + "; ".join(fuzzy)


def test_the_compiled_catalogue_matches_the_po():
    # A .po edited without `compilemessages` ships English: the .mo is what Django reads.
    mo = gettext.GNUTranslations((CATALOGUE / "django.mo").open("rb"))
    stale = []
    for e in _entries((CATALOGUE / "django.po").read_text(encoding="utf-8")):
        if e["obsolete"] or "msgctxt" in e:
            continue
        got = mo.ngettext(e["msgid"], e["msgid_plural"], 1) if e["msgid_plural"] else mo.gettext(e["msgid"])
        if got != e["msgstr"][0]:
            stale.append(e["msgid"])
    assert stale == [], "run compilemessages; stale: " + "; ".join(stale)


@pytest.fixture
def chinese_admin(client, admin_user):
    client.force_login(admin_user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    return client


def _page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def _sidebar_and_headers(body: str) -> str:
    """Labels only: object strings (RF-000001, customer names) are data and stay as they are."""
    return re.sub(r"<(script|style)\b.*?</\1>", "", body, flags=re.S)


@pytest.mark.django_db
def test_admin_index_names_every_area_in_chinese(chinese_admin):
    body = _sidebar_and_headers(_page(chinese_admin, reverse("admin:index")))
    for label in ("收件箱", "观察名单", "风险画像", "风控设置", "打款", "通知", "消息模板"):
        assert label in body, label
    for english in (">Inbox<", ">Watch list<", ">Risk profiles<", ">Risk settings<", ">Payouts<", ">Message templates<"):
        assert english not in body, english


@pytest.mark.django_db
def test_the_same_index_stays_english_without_the_cookie(client, admin_user):
    client.force_login(admin_user)
    body = _page(client, reverse("admin:index"))
    assert ">Watch list<" in body and "观察名单" not in body


@pytest.mark.django_db
def test_finance_risk_and_inbox_changelists_are_chinese(chinese_admin):
    PayoutFactory()
    WatchlistEntry.objects.create(customer=CustomerFactory(), reason="manual", source="manual")
    refund = RefundRequestFactory(state=RefundRequest.State.UNDER_REVIEW)
    notify_staff(role="support", event="refund_escalated", refund=refund, context={"reason": "x"})

    payouts = _page(chinese_admin, reverse("admin:refunds_payout_changelist"))
    assert "批准所选打款" in payouts and "第一审批人" in payouts and "每日对账" in payouts
    assert "Approve selected payouts" not in payouts and "Daily reconciliation" not in payouts

    watch = _page(chinese_admin, reverse("admin:risk_watchlistentry_changelist"))
    assert "观察名单" in watch and "手动添加" in watch and "已移除或已过期" in watch
    assert "Added by hand" not in watch and "removed or expired" not in watch

    inbox = _page(chinese_admin, reverse("admin:notifications_staffmessage_changelist"))
    assert "收件箱（" in inbox and "标记为已读" in inbox and "未读" in inbox
    assert "Inbox (" not in inbox and "Mark as read" not in inbox

    report = _page(chinese_admin, reverse("admin:risk_report"))
    assert "风控报表" in report and "每周滥用退款率" in report and "精确率" in report
    assert "Risk report" not in report and "Precision" not in report and "Per channel" not in report


@pytest.mark.django_db
def test_risk_profile_columns_and_settings_labels_are_chinese(chinese_admin):
    RiskSettings.current()
    RiskProfile.objects.create(customer=CustomerFactory())  # an empty changelist has no column headers
    profiles = _page(chinese_admin, reverse("admin:risk_riskprofile_changelist"))
    assert "90 天订单数" in profiles and "共用手机号的账户数" in profiles
    assert "Orders 90d" not in profiles

    settings_page = _page(chinese_admin, reverse("admin:risk_risksettings_change", args=[1]))
    assert "权重：退款率" in settings_page and "原因（记入审计日志）" in settings_page
    assert "Weight: refund rate" not in settings_page


@pytest.mark.django_db
def test_the_queue_shows_the_risk_level_in_the_staff_language(chinese_admin):
    refund = RefundRequestFactory(state=RefundRequest.State.UNDER_REVIEW)
    RefundRequest.objects.filter(pk=refund.pk).update(risk_level="low", risk_score=12)
    url = reverse("admin:refunds_refundrequest_changelist") + "?queue=under_review"

    assert "低 (12)" in _page(chinese_admin, url)
    chinese_admin.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    english = _page(chinese_admin, url)
    assert "low (12)" in english and "低" not in english


@pytest.mark.django_db
def test_outbox_and_policy_field_labels_are_chinese(chinese_admin):
    refund = RefundRequestFactory(state=RefundRequest.State.UNDER_REVIEW)
    notify_staff(role="support", event="refund_escalated", refund=refund, context={"reason": "x"})

    outbox = _page(chinese_admin, reverse("admin:notifications_notification_changelist"))
    assert "下次尝试时间" in outbox and "Next attempt at" not in outbox

    policies = _page(chinese_admin, reverse("admin:refunds_refundpolicy_changelist"))
    assert "更新时间" in policies and "Updated at" not in policies
