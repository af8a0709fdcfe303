"""The one audit log, through the admin: who changed what, old → new, for refund policies,
risk settings, payout settings, staff roles, channels and their keys; who may read it; and
the export."""

import csv
import io
from datetime import datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from config.audit.models import AuditEntry, PendingChange
from orders.models import Channel, ChannelKey
from refunds.models import PayoutSettings, RefundPolicy
from refunds.rules import policy_for
from risk.models import RiskSettings
from tests.factories import ChannelFactory, UserFactory

pytestmark = pytest.mark.django_db

LOG = "admin:audit_auditentry_changelist"


@pytest.fixture(autouse=True)
def _settled_rows(db):
    """The rows migrations make (after a transactional test's flush they are made on first
    use, and that creation is logged too): made here, so a test reads only its own entries."""
    policy_for(None), RiskSettings.current(), PayoutSettings.current()
    AuditEntry.objects.all().delete()


def form_data(response, **changes) -> dict:
    """The admin form's current values as a POST body, with `changes` on top."""
    form = response.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        if field.disabled:
            continue
        value = form[name].value()
        if value is None:
            continue
        if isinstance(value, datetime):
            value = timezone.localtime(value)
            data[f"{name}_0"], data[f"{name}_1"] = value.date().isoformat(), value.time().strftime("%H:%M:%S")
        elif isinstance(value, bool):
            if value:
                data[name] = "on"
        elif isinstance(value, list | tuple):
            data[name] = [str(v) for v in value]
        else:
            data[name] = str(value)
    # Inlines (a channel's keys) post their management form and rows unchanged.
    for inline in response.context.get("inline_admin_formsets", []):
        formset = inline.formset
        data.update({f"{formset.prefix}-{k}": v for k, v in formset.management_form.initial.items()})
        for i, row in enumerate(formset.forms):
            for name in row.fields:
                value = row[name].value()
                if value is None or value is False:
                    continue
                if isinstance(value, datetime):
                    value = timezone.localtime(value)
                    data[f"{formset.prefix}-{i}-{name}_0"] = value.date().isoformat()
                    data[f"{formset.prefix}-{i}-{name}_1"] = value.time().strftime("%H:%M:%S")
                else:
                    data[f"{formset.prefix}-{i}-{name}"] = "on" if value is True else str(value)
    for name, value in changes.items():
        if value is False:
            data.pop(name, None)
        elif value is True:
            data[name] = "on"
        else:
            data[name] = value
    return data


def entries_for(model):
    return AuditEntry.objects.filter(content_type__app_label=model._meta.app_label, content_type__model=model._meta.model_name)


def policy_form(client, policy, **changes):
    url = reverse("admin:refunds_refundpolicy_change", args=[policy.pk])
    data = form_data(client.get(url), **changes)
    return client.post(url, {**data, "_confirm_dry_run": "1"})


def test_a_policy_change_shows_old_and_new_values(client, risk_user):
    policy = policy_for(None)
    client.force_login(risk_user)
    response = policy_form(client, policy, auto_approve_limit="150.00", return_window_days="45")
    assert response.status_code == 302
    entry = entries_for(RefundPolicy).get()
    assert entry.actor == risk_user
    assert entry.changes_dict == {"auto_approve_limit": ["200.00", "150.00"], "return_window_days": ["30", "45"]}
    page = client.get(reverse(LOG)).content.decode()
    assert "auto-approve limit: 200.00 → 150.00" in page
    assert "return window (days): 30 → 45" in page


def test_a_risk_settings_change_is_in_the_same_log(client, risk_user):
    client.force_login(risk_user)
    url = reverse("admin:risk_risksettings_change", args=[RiskSettings.current().pk])
    response = client.post(url, form_data(client.get(url), weight_velocity="12", change_note="fewer false bursts"))
    assert response.status_code == 302
    entry = entries_for(RiskSettings).get()
    assert (entry.changes_dict, entry.actor, entry.additional_data) == (
        {"weight_velocity": ["30", "12"]},
        risk_user,
        {"note": "fewer false bursts"},
    )
    page = client.get(reverse(LOG)).content.decode()
    assert "weight: burst of requests: 30 → 12" in page and "fewer false bursts" in page


def test_role_membership_and_superuser_changes_show_who_and_what(client, admin_user):
    clerk = UserFactory(username="clerk", role="support")
    AuditEntry.objects.all().delete()  # the factory's own writes are not what this test reads
    client.force_login(admin_user)
    url = reverse("admin:auth_user_change", args=[clerk.pk])
    finance = Group.objects.get(name="finance")
    response = client.post(url, form_data(client.get(url), groups=[str(finance.pk)], is_superuser=True))
    assert response.status_code == 302, response.context["adminform"].form.errors
    entries = list(entries_for(clerk).order_by("pk"))
    assert all(e.actor == admin_user for e in entries)
    changes = {}
    for e in entries:
        changes.update(e.changes_dict)
    assert changes["is_superuser"] == ["False", "True"]
    assert {
        (c["operation"], tuple(c["objects"])) for c in [e.changes_dict["groups"] for e in entries if "groups" in e.changes_dict]
    } == {
        ("add", ("finance",)),
        ("delete", ("support",)),
    }
    page = client.get(reverse(LOG), {"q": "clerk"}).content.decode()
    assert "superuser status: False → True" in page
    assert "+ finance" in page and "− support" in page


def test_a_password_change_is_logged_without_the_hash(admin_user):
    clerk = UserFactory(username="clerk")
    AuditEntry.objects.all().delete()
    clerk.set_password("another-Pass-456")
    clerk.save()
    entry = entries_for(clerk).get()
    assert entry.changes_dict == {"password": ["••••••", "••••••"]}
    assert clerk.password not in str(entry.changes)


def test_a_channel_change_and_a_key_rotation_are_logged_without_the_key(client, admin_user):
    channel = ChannelFactory(name="shop", kind="web_store")
    AuditEntry.objects.all().delete()
    client.force_login(admin_user)
    url = reverse("admin:orders_channel_change", args=[channel.pk])
    assert client.post(url, form_data(client.get(url), is_active=False)).status_code == 302
    out = io.StringIO()
    call_command("create_channel", "shop", kind="web_store", rotate=True, stdout=out)
    key = out.getvalue().strip().splitlines()[-1]
    (switched_off,) = entries_for(Channel)
    assert (switched_off.actor, switched_off.changes_dict) == (admin_user, {"is_active": ["True", "False"]})
    rotated = entries_for(ChannelKey).get(object_id=ChannelKey.objects.get(key_prefix=key[:8]).pk)
    assert rotated.actor is None and rotated.additional_data == {"via": "manage.py create_channel --rotate"}
    assert rotated.changes_dict["key_prefix"][1] == key[:8]
    assert rotated.changes_dict["key_hash"][1] == "••••••"
    assert "last_used_at" not in rotated.changes_dict
    assert Channel.hash_key(key) not in str(rotated.changes) and key not in str(rotated.changes)
    page = client.get(reverse(LOG)).content.decode()
    assert "active: True → False" in page and f"→ {key[:8]}" in page


@pytest.mark.parametrize(
    ("role", "sees"),
    [
        ("risk", {"refund policy", "risk settings"}),
        ("finance", {"payout settings"}),
        ("admin", {"refund policy", "risk settings", "payout settings", "channel", "user"}),
    ],
)
def test_each_role_reads_the_log_of_what_it_may_view(client, admin_user, role, sees):
    from config.actors import Actor
    from refunds import services
    from risk import services as risk_services

    admin2 = UserFactory(username="admin2", is_superuser=True)
    services.policy_save(policy=_with(policy_for(None), return_window_days=20), actor=Actor.for_user(admin_user))
    risk_services.risk_settings_update(actor=Actor.for_user(admin_user), changes={"weight_velocity": 9})
    services.payout_settings_update(four_eyes_above=Decimal("500.00"), actor=Actor.for_user(admin_user))
    ChannelFactory(name="the-shop")
    admin2.groups.add(Group.objects.get(name="support"))
    client.force_login(admin_user if role == "admin" else UserFactory(role=role))
    response = client.get(reverse(LOG))
    assert response.status_code == 200
    kinds = {str(k) for k in (response.context["cl"].model_admin.kind(e) for e in response.context["cl"].result_list)}
    assert kinds == sees


@pytest.mark.parametrize("role", ["support", "warehouse"])
def test_support_and_warehouse_may_not_read_the_log(client, role):
    client.force_login(UserFactory(role=role))
    assert client.get(reverse(LOG)).status_code == 403
    assert client.get(reverse("admin:audit_pendingchange_changelist")).status_code == 403


def test_nobody_edits_or_deletes_an_entry(client, admin_user):
    policy = policy_for(None)
    client.force_login(admin_user)
    policy_form(client, policy, return_window_days="21")
    entry = entries_for(RefundPolicy).get()
    assert client.post(reverse("admin:audit_auditentry_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_the_log_filters_by_kind_and_action(client, admin_user):
    client.force_login(admin_user)
    policy_form(client, policy_for(None), return_window_days="21")
    ChannelFactory(name="the-shop")
    from django.contrib.contenttypes.models import ContentType

    ct = ContentType.objects.get_for_model(Channel)
    rows = client.get(reverse(LOG), {"kind": ct.pk}).context["cl"].result_list
    assert {e.content_type_id for e in rows} == {ct.pk}
    rows = client.get(reverse(LOG), {"action": 1}).context["cl"].result_list
    assert rows and all(e.action == 1 for e in rows)


@pytest.mark.parametrize(("fmt", "index"), [("csv", "0"), ("xlsx", "1")])
def test_the_log_exports_as_csv_and_xlsx(client, risk_user, fmt, index):
    client.force_login(risk_user)
    policy_form(client, policy_for(None), auto_approve_limit="120.00")
    url = reverse("admin:audit_auditentry_export")
    page = client.get(url)
    assert page.status_code == 200
    fields = [n for n in page.context["form"].fields if n.startswith("auditentryresource_")]
    response = client.post(url, {"format": index, "resource": "0", **dict.fromkeys(fields, "on")})
    assert response.status_code == 200
    content = b"".join(response.streaming_content) if response.streaming else response.content
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
    else:
        sheet = load_workbook(io.BytesIO(content)).active
        values = list(sheet.values)
        rows = [dict(zip(values[0], r, strict=True)) for r in values[1:]]
    assert len(rows) == 1
    assert rows[0]["by"] == risk_user.username and rows[0]["kind"] == "refunds.refundpolicy"
    assert rows[0]["changes (old -> new)"] == "auto-approve limit: 200.00 → 120.00"


def test_export_needs_the_logs_permission(client):
    client.force_login(UserFactory(role="support"))
    assert client.get(reverse("admin:audit_auditentry_export")).status_code == 403


def _with(obj, **values):
    for k, v in values.items():
        setattr(obj, k, v)
    return obj


def test_the_payout_settings_screen_is_in_force_for_finance_to_read(client, finance_user):
    client.force_login(finance_user)
    row = PayoutSettings.current()
    assert client.get(reverse("admin:refunds_payoutsettings_change", args=[row.pk])).status_code == 200
    url = reverse("admin:refunds_payoutsettings_change", args=[row.pk])
    assert client.post(url, {"four_eyes_above": "1.00"}).status_code == 403
    assert PayoutSettings.current().four_eyes_above is None


@pytest.mark.parametrize("screen", ["auditentry", "pendingchange"])
def test_the_audit_screens_query_count_is_pinned(client, admin_user, screen):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from config.actors import Actor
    from refunds import services

    admins = [UserFactory(username=f"admin-{i}", is_superuser=True) for i in range(6)]
    channels = [ChannelFactory(name=f"shop-{i}") for i in range(6)]

    def more(i):
        services.payout_settings_update(four_eyes_above=Decimal(2000 + i), actor=Actor.for_user(admins[i]))
        channels[i].name = f"renamed-{i}"
        channels[i].save()

    more(0)
    client.force_login(admin_user)
    url = reverse(f"admin:audit_{screen}_changelist")
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    for i in range(1, 6):
        from config.audit.services import pending_change_reject

        pending_change_reject(change_id=PendingChange.objects.get(state="pending").pk, actor=Actor.for_user(admin_user))
        more(i)
    with CaptureQueriesContext(connection) as many:
        assert client.get(url).status_code == 200
    assert len(many.captured_queries) == len(few.captured_queries)


def test_auditlogs_own_unscoped_screen_is_not_in_the_admin():
    from django.urls import NoReverseMatch

    with pytest.raises(NoReverseMatch):
        reverse("admin:auditlog_logentry_changelist")
