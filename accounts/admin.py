"""Administrators' screens for staff accounts: sign-in lockouts (unlock) and every staff
session (end one, e.g. when someone leaves). Superusers only: no role has these permissions."""

from axes import utils as axes_utils
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy, ngettext

from accounts.models import StaffSession


class _AdministratorsOnly:
    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_delete_permission(self, request, obj=None):
        return self.has_view_permission(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class LockedFilter(admin.SimpleListFilter):
    title = gettext_lazy("locked out")
    parameter_name = "locked"

    def lookups(self, request, model_admin):
        return [("yes", gettext_lazy("Yes")), ("no", gettext_lazy("No"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(failures_since_start__gte=settings.AXES_FAILURE_LIMIT)
        if self.value() == "no":
            return queryset.filter(failures_since_start__lt=settings.AXES_FAILURE_LIMIT)
        return queryset


@admin.register(AccessAttempt)
class AccessAttemptAdmin(_AdministratorsOnly, admin.ModelAdmin):
    """django-axes' failed sign-ins, one row per user name, address and browser."""

    list_display = ["username", "ip_address", "failures_since_start", "locked", "attempt_time", "user_agent"]
    list_filter = [LockedFilter]
    search_fields = ["username", "ip_address"]
    ordering = ["-attempt_time"]
    fields = ["username", "ip_address", "user_agent", "path_info", "failures_since_start", "attempt_time"]
    readonly_fields = fields
    actions = ["unlock"]

    @admin.display(description=gettext_lazy("locked out"), boolean=True)
    def locked(self, obj):
        return obj.failures_since_start >= settings.AXES_FAILURE_LIMIT

    @admin.action(description=gettext_lazy("Unlock the user name and the address of the selected rows"), permissions=["delete"])
    def unlock(self, request, queryset):
        n = 0
        for username, ip in set(queryset.values_list("username", "ip_address")):
            n += axes_utils.reset(ip=ip, username=username, ip_or_username=True)
        self.message_user(
            request,
            ngettext("Unlocked: %(n)d failed sign-in record cleared.", "Unlocked: %(n)d failed sign-in records cleared.", n)
            % {"n": n},
            messages.SUCCESS,
        )


@admin.register(StaffSession)
class StaffSessionAdmin(_AdministratorsOnly, admin.ModelAdmin):
    """Everyone's live and expired sessions; deleting one signs that browser out."""

    list_display = ["user", "ip_address", "user_agent", "signed_in_at", "last_seen_at", "expire_date"]
    list_select_related = ["user"]
    search_fields = ["user__username", "ip_address"]
    ordering = ["-last_seen_at"]
    fields = ["user", "ip_address", "user_agent", "signed_in_at", "last_seen_at", "expire_date"]
    readonly_fields = fields
