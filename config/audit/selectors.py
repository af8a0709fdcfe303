"""Reading the audit log: which entries a user may see, and each entry's old → new lines."""

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist
from django.utils.translation import gettext_lazy as _

from config.audit.log import registered_models
from config.audit.models import AuditEntry, PendingChange

ACTIONS = {0: _("created"), 1: _("changed"), 2: _("deleted"), 3: _("viewed")}


def action_label(action: int):
    return ACTIONS.get(action, str(action))


def visible_content_types(user) -> list[ContentType] | None:
    """The kinds of object whose log `user` reads: those whose rows they may view (risk: its
    policies and settings; admins: everything). None means all."""
    if user.is_superuser:
        return None
    models = [m for m in registered_models() if user.has_perm(f"{m._meta.app_label}.view_{m._meta.model_name}")]
    return list(ContentType.objects.get_for_models(*models).values()) if models else []


def audit_entries(*, user):
    qs = AuditEntry.objects.select_related("actor", "content_type")
    cts = visible_content_types(user)
    return qs if cts is None else qs.filter(content_type__in=cts)


def pending_changes(*, user):
    qs = PendingChange.objects.select_related("proposed_by", "decided_by", "content_type")
    cts = visible_content_types(user)
    return qs if cts is None else qs.filter(content_type__in=cts)


def change_lines(entry) -> list[tuple[str, str]]:
    """(field label, "old → new") per field; an m2m change says what was added or removed."""
    model = entry.content_type.model_class()
    lines = []
    for name, change in (entry.changes_dict or {}).items():
        lines.append((str(_label(model, name)), _change_text(change)))
    return lines


def pending_lines(change: PendingChange) -> list[tuple[str, str]]:
    model = change.content_type.model_class()
    return [(str(_label(model, name)), f"{old} → {new}") for name, (old, new) in change.changes.items()]


def _label(model, name: str):
    try:
        return getattr(model._meta.get_field(name), "verbose_name", name) if model else name
    except FieldDoesNotExist:
        return name


def _change_text(change) -> str:
    if isinstance(change, dict) and change.get("type") == "m2m":
        sign = "+" if change.get("operation") == "add" else "−"
        return ", ".join(f"{sign} {o}" for o in change.get("objects", []))
    old, new = (list(change) + [None, None])[:2]
    return f"{_none(old)} → {_none(new)}"


def _none(value) -> str:
    return "—" if value in (None, "None", "") else str(value)
