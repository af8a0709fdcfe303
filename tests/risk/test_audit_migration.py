"""The risk settings' old change log is carried into the one audit log, not lost."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("risk", "0004_i18n_labels")]
AFTER = [("risk", "0005_risksettingschange_into_audit_log")]


@pytest.mark.django_db(transaction=True)
def test_old_risk_settings_changes_become_audit_entries():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    user = old.get_model("auth", "User").objects.create(username="risk-lead")
    old.get_model("risk", "RiskSettingsChange").objects.create(
        field="weight_velocity", old_value="30", new_value="25", changed_by_id=user.pk, note="fewer bursts"
    )

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)

    from config.audit.models import AuditEntry

    entry = AuditEntry.objects.get(content_type__app_label="risk", content_type__model="risksettings")
    assert (entry.changes_dict, entry.actor_id, entry.additional_data) == (
        {"weight_velocity": ["30", "25"]},
        user.pk,
        {"note": "fewer bursts"},
    )
