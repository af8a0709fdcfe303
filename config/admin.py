"""Stuck work: the rows the sweepers parked, for an administrator to look at and send back."""

from django.contrib import admin, messages
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy, ngettext

from config import sweeps
from config.models import StuckWork


@admin.register(StuckWork)
class StuckWorkAdmin(admin.ModelAdmin):
    list_display = ["sweeper", "row", "failures", "short_error", "last_failed_at", "parked_at"]
    list_filter = ["sweeper", ("parked_at", admin.EmptyFieldListFilter)]
    ordering = ["-last_failed_at", "-pk"]
    readonly_fields = ["sweeper", "row", "failures", "last_error", "first_failed_at", "last_failed_at", "parked_at"]
    fields = readonly_fields
    actions = ["send_back"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=gettext_lazy("row"))
    def row(self, obj):
        # Sweepers are named "<app_label>.<model>:<what>": the row links to its admin page.
        model = obj.sweeper.split(":", 1)[0]
        try:
            url = reverse(f"admin:{model.replace('.', '_')}_change", args=[obj.object_id])
        except NoReverseMatch:
            return f"#{obj.object_id}"
        return format_html('<a href="{}">#{}</a>', url, obj.object_id)

    @admin.display(description=gettext_lazy("last error"))
    def short_error(self, obj):
        return obj.last_error.splitlines()[-1][:160] if obj.last_error else ""

    @admin.action(description=gettext_lazy("Send back to its sweeper (the cause is fixed)"), permissions=["delete"])
    def send_back(self, request, queryset):
        n = sweeps.unpark(ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(
            request,
            ngettext("%(n)d row goes back to its sweeper.", "%(n)d rows go back to their sweepers.", n) % {"n": n},
            messages.SUCCESS,
        )
