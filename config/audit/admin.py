"""The audit log and the changes waiting for a second admin, in the admin.

Each role reads the log of the objects it may view (risk: policies and risk settings;
finance: payout settings; admins: everything, staff accounts and channels included), filters
it by kind, action, person and date, and exports what it filtered as CSV or XLSX.
"""

from auditlog.models import LogEntry
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from import_export.admin import ExportMixin
from import_export.formats.base_formats import CSV, XLSX

from config.actors import Actor
from config.audit import selectors, services
from config.audit.models import AuditEntry, PendingChange
from config.audit.resources import AuditEntryResource
from config.errors import DomainError

# auditlog's own screen shows its English labels and every entry to anyone with its
# permission; ours is translated and scoped per role.
if admin.site.is_registered(LogEntry):
    admin.site.unregister(LogEntry)


class KindFilter(admin.SimpleListFilter):
    title = _("kind")
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        cts = selectors.visible_content_types(request.user)
        if cts is None:
            from django.contrib.contenttypes.models import ContentType

            cts = ContentType.objects.get_for_models(*selectors.registered_models()).values()
        return sorted(((ct.pk, str(ct.model_class()._meta.verbose_name)) for ct in cts), key=lambda x: x[1])

    def queryset(self, request, queryset):
        return queryset.filter(content_type_id=self.value()) if self.value() else queryset


class ActionFilter(admin.SimpleListFilter):
    title = _("action")
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return [(k, v) for k, v in selectors.ACTIONS.items() if k != 3]

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


def _lines(pairs):
    if not pairs:
        return ""
    return format_html("<ul class='rd-changes'>{}</ul>", format_html_join("", "<li>{}: {}</li>", pairs))


@admin.register(AuditEntry)
class AuditEntryAdmin(ExportMixin, admin.ModelAdmin):
    resource_classes = [AuditEntryResource]
    formats = [CSV, XLSX]
    date_hierarchy = "timestamp"
    list_display = ["timestamp", "who", "kind", "object_repr", "what", "changes_shown", "note"]
    list_filter = [KindFilter, ActionFilter, "timestamp"]
    search_fields = ["object_repr", "actor__username"]
    ordering = ["-timestamp", "-pk"]
    fields = ["timestamp", "who", "kind", "object_repr", "what", "changes_shown", "note"]
    readonly_fields = fields

    def get_queryset(self, request):
        return selectors.audit_entries(user=request.user)

    def get_export_queryset(self, request):
        return super().get_export_queryset(request).select_related("actor", "content_type")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # append-only: nobody edits the record of what they did

    @admin.display(description=_("by"), ordering="actor__username")
    def who(self, obj):
        return obj.actor.get_username() if obj.actor_id else _("system")

    @admin.display(description=_("kind"))
    def kind(self, obj):
        model = obj.content_type.model_class()
        return model._meta.verbose_name if model else obj.content_type.model

    @admin.display(description=_("action"))
    def what(self, obj):
        return selectors.action_label(obj.action)

    @admin.display(description=_("changes (old → new)"))
    def changes_shown(self, obj):
        return _lines(selectors.change_lines(obj))

    @admin.display(description=_("note"))
    def note(self, obj):
        return _lines(list((obj.additional_data or {}).items()))


@admin.register(PendingChange)
class PendingChangeAdmin(admin.ModelAdmin):
    list_display = ["__str__", "kind", "object_repr", "changes_shown", "state", "proposed_by", "proposed_at", "decided_by"]
    list_filter = ["state"]
    ordering = ["-proposed_at", "-pk"]
    fields = [
        "kind",
        "object_repr",
        "changes_shown",
        "note",
        "state",
        "proposed_by",
        "proposed_at",
        "decided_by",
        "decided_at",
        "decision_note",
    ]
    readonly_fields = fields
    change_form_template = "admin/audit/pendingchange/change_form.html"

    def get_queryset(self, request):
        return selectors.pending_changes(user=request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("kind"))
    def kind(self, obj):
        model = obj.content_type.model_class()
        return model._meta.verbose_name if model else obj.content_type.model

    @admin.display(description=_("changes (old → new)"))
    def changes_shown(self, obj):
        return _lines(selectors.pending_lines(obj))

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/approve/", view(self.approve_view), name="audit_pendingchange_approve"),
            path("<path:object_id>/reject/", view(self.reject_view), name="audit_pendingchange_reject"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        can_decide = obj is not None and obj.state == PendingChange.State.PENDING
        extra = {
            "can_approve": can_decide and request.user.has_perm(services.APPROVE) and obj.proposed_by_id != request.user.pk,
            "own_proposal": can_decide and obj.proposed_by_id == request.user.pk,
            "can_reject": can_decide and (request.user.has_perm(services.APPROVE) or obj.proposed_by_id == request.user.pk),
        }
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def approve_view(self, request, object_id):
        return self._decide(request, object_id, services.pending_change_approve, _("Approved: the new value applies now."))

    def reject_view(self, request, object_id):
        return self._decide(request, object_id, services.pending_change_reject, _("Rejected: the old value stays."))

    def _decide(self, request, object_id, service, done):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise PermissionDenied
        try:
            service(change_id=obj.pk, actor=Actor.for_user(request.user), note=request.POST.get("note", "")[:200])
        except DomainError as e:
            self.message_user(request, e.message, messages.ERROR)
        else:
            self.message_user(request, done, messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:audit_pendingchange_change", args=[obj.pk]))
