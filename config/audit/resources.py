"""The audit log as a spreadsheet (CSV, XLSX): one row per entry, old → new per field."""

from import_export import fields, resources

from config.audit.models import AuditEntry
from config.audit.selectors import action_label, change_lines


class AuditEntryResource(resources.ModelResource):
    at = fields.Field(column_name="at")
    by = fields.Field(column_name="by")
    kind = fields.Field(column_name="kind")
    object = fields.Field(column_name="object")
    what = fields.Field(column_name="action")
    changes_text = fields.Field(column_name="changes (old -> new)")
    note = fields.Field(column_name="note")

    class Meta:
        model = AuditEntry
        fields = ["id", "at", "by", "kind", "object", "what", "changes_text", "note"]
        export_order = fields

    def dehydrate_at(self, e):
        return e.timestamp.isoformat()

    def dehydrate_by(self, e):
        return e.actor.get_username() if e.actor_id else "system"

    def dehydrate_kind(self, e):
        return f"{e.content_type.app_label}.{e.content_type.model}"

    def dehydrate_object(self, e):
        return e.object_repr

    def dehydrate_what(self, e):
        return str(action_label(e.action))

    def dehydrate_changes_text(self, e):
        return "; ".join(f"{label}: {change}" for label, change in change_lines(e))

    def dehydrate_note(self, e):
        return ", ".join(f"{k}={v}" for k, v in (e.additional_data or {}).items())
