"""The risk settings' own change log becomes entries of the one audit log, then goes."""

from django.db import migrations


def copy_into_audit_log(apps, schema_editor):
    Change = apps.get_model("risk", "RiskSettingsChange")
    if not Change.objects.exists():
        return
    ContentType = apps.get_model("contenttypes", "ContentType")
    LogEntry = apps.get_model("auditlog", "LogEntry")
    ct, _ = ContentType.objects.get_or_create(app_label="risk", model="risksettings")
    LogEntry.objects.bulk_create(
        [
            LogEntry(
                content_type=ct,
                object_pk="1",
                object_id=1,
                object_repr="risk settings",
                action=1,  # auditlog's "update"
                changes={c.field: [c.old_value, c.new_value]},
                actor_id=c.changed_by_id,
                timestamp=c.changed_at,
                additional_data={"note": c.note} if c.note else None,
            )
            for c in Change.objects.order_by("pk").iterator()
        ]
    )


class Migration(migrations.Migration):
    dependencies = [
        ("risk", "0004_i18n_labels"),
        ("auditlog", "0017_add_actor_email"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(copy_into_audit_log, migrations.RunPython.noop),
        migrations.DeleteModel(name="RiskSettingsChange"),
    ]
