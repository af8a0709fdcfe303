"""Admin for the outbox (dead and failing messages, resend), the staff inbox, message
templates with a preview, and the SLA limits.

The outbox and templates use Django's model permissions (administrators). The inbox is for
every staff user: it shows only the messages for their roles, read state per user.
"""

import re

from django.contrib import admin, messages
from django.template import TemplateSyntaxError
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from config.admin_kit import ReadOnlyAdminMixin
from notifications import selectors, services
from notifications.models import MessageTemplate, Notification, SlaBreach, SlaLimit, StaffMessage
from notifications.rendering import preview


class RefundNumberSearchMixin:
    """Staff type refund numbers as they see them ("RF-000123"); search by the id behind it."""

    def get_search_results(self, request, queryset, search_term):
        match = re.fullmatch(r"\s*RF-?0*(\d+)\s*", search_term, flags=re.IGNORECASE)
        if match:
            return queryset.filter(refund_id=int(match[1])), False
        return super().get_search_results(request, queryset, search_term)


class ProblemFilter(admin.SimpleListFilter):
    title = _("needs attention")
    parameter_name = "problem"

    def lookups(self, request, model_admin):
        return [("yes", _("Dead or failing"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(status__in=[Notification.Status.DEAD, Notification.Status.FAILED])
        return queryset


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdminMixin, RefundNumberSearchMixin, admin.ModelAdmin):
    list_display = ["__str__", "channel", "status", "attempts", "next_attempt_at", "error", "refund", "created_at"]
    list_filter = [ProblemFilter, "status", "channel", "event"]
    list_select_related = ["refund"]
    search_fields = ["recipient", "event", "=refund__id"]
    ordering = ["-created_at", "-id"]
    show_full_result_count = False
    actions = ["resend"]
    readonly_fields = [
        "channel", "event", "language", "recipient", "recipient_user", "refund", "subject", "body", "context",
        "status", "attempts", "next_attempt_at", "claimed_at", "sent_at", "last_error", "provider_message_id",
        "created_at",
    ]  # fmt: skip
    fields = readonly_fields

    @admin.display(description=_("last error"))
    def error(self, obj):
        return obj.last_error[:120]

    @admin.action(description=_("Resend the selected dead or failed messages"))
    def resend(self, request, queryset):
        if not request.user.has_perm("notifications.view_notification"):
            self.message_user(request, _("You may not resend messages."), messages.ERROR)
            return
        count = services.notification_resend(notification_ids=list(queryset.values_list("pk", flat=True)))
        skipped = queryset.count() - count
        self.message_user(request, ngettext("%d message queued again.", "%d messages queued again.", count) % count)
        if skipped:
            self.message_user(
                request, _("%d left alone: only dead or failed customer messages are resent.") % skipped, messages.WARNING
            )


class ReadFilter(admin.SimpleListFilter):
    title = _("read")
    parameter_name = "read"

    def lookups(self, request, model_admin):
        return [("no", _("Unread")), ("yes", _("Read"))]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(is_read=self.value() == "yes")
        return queryset


@admin.register(StaffMessage)
class StaffInboxAdmin(ReadOnlyAdminMixin, RefundNumberSearchMixin, admin.ModelAdmin):
    list_display = ["unread_mark", "subject", "recipient", "refund", "created_at"]
    list_display_links = ["subject"]
    list_filter = [ReadFilter, "event"]
    list_select_related = ["refund"]
    search_fields = ["subject", "body", "=refund__id"]
    ordering = ["-created_at", "-id"]
    actions = ["mark_read"]
    fields = ["subject", "body", "recipient", "refund", "created_at"]
    readonly_fields = fields

    def get_queryset(self, request):
        return selectors.staff_inbox_for(request.user)

    # Every staff user has an inbox; what they see is limited by get_queryset, not by a
    # model permission the role groups would each need.
    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    @admin.display(description="", boolean=False)
    def unread_mark(self, obj):
        return "" if obj.is_read else format_html("<strong>{}</strong>", "●")

    @admin.action(description=_("Mark as read"))
    def mark_read(self, request, queryset):
        services.inbox_mark_read(user=request.user, notification_ids=list(queryset.values_list("pk", flat=True)))

    def changelist_view(self, request, extra_context=None):
        unread = selectors.unread_count_for(request.user)
        extra_context = {**(extra_context or {}), "title": _("Inbox (%d unread)") % unread}
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        if response.status_code == 200 and object_id.isdigit():
            # Opening a message reads it, as in any mail client.
            services.inbox_mark_read(user=request.user, notification_ids=[int(object_id)])
        return response


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    list_display = ["event", "channel", "language", "subject", "updated_at"]
    list_filter = ["channel", "language", "event"]
    search_fields = ["event", "subject", "body"]
    ordering = ["event", "channel", "language"]
    fields = ["event", "channel", "language", "subject", "body", "preview_text", "updated_at"]
    readonly_fields = ["preview_text", "updated_at"]

    @admin.display(description=_("preview (sample refund)"))
    def preview_text(self, obj):
        if obj is None or not obj.pk:
            return _("Save to see a preview.")
        try:
            subject, body = preview(obj)
        except TemplateSyntaxError as exc:
            return format_html('<span class="errornote">{}</span>', str(exc))
        return format_html(
            '<div class="rd-pre"><strong>{}</strong><br>{}</div><p>{}</p>',
            subject,
            body,
            _("%(n)d characters") % {"n": len(body)},
        )


@admin.register(SlaLimit)
class SlaLimitAdmin(admin.ModelAdmin):
    list_display = ["state", "role", "alert_after_minutes", "escalate_after_minutes", "escalate_to", "active"]
    list_editable = ["alert_after_minutes", "escalate_after_minutes", "active"]
    ordering = ["state"]


@admin.register(SlaBreach)
class SlaBreachAdmin(RefundNumberSearchMixin, admin.ModelAdmin):
    list_display = ["__str__", "refund", "state", "level", "role", "state_changed_at", "created_at"]
    list_filter = ["level", "state", "role"]
    list_select_related = ["refund"]
    search_fields = ["=refund__id"]
    ordering = ["-created_at", "-id"]
    readonly_fields = ["refund", "state", "state_changed_at", "level", "role", "created_at"]
    fields = readonly_fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
