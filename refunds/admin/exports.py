"""Admin screen: the exports a finance user asked for that were too big to write at once,
and the one way the list screens hand out an export (at once, or in the background)."""

from django.conf import settings
from django.contrib import admin, messages
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from config.admin_kit import ReadOnlyAdminMixin
from refunds import exports
from refunds import permissions as perms
from refunds.models import Export, export_file_stem
from refunds.resources import EXPORTERS

CONTENT_TYPES = {
    Export.Format.CSV: "text/csv; charset=utf-8",
    Export.Format.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def export_response(request, *, what: str, fmt: str, resource, rows, filters: dict):
    """The file now, named for what, the filter and the day (`payouts-failed-2026-12-02.xlsx`),
    or for more than EXPORT_INLINE_MAX_ROWS rows a background export of the same filter and a
    redirect to the user's exports."""
    if not exports.over_inline_limit(rows):
        return EXPORTERS[fmt](resource, rows, export_file_stem(what, filters, timezone.localdate()))
    exports.export_request(user=request.user, what=what, fmt=fmt, filters=filters)
    messages.info(
        request,
        gettext(
            "More than %(limit)s rows: the file is being written in the background. "
            "Download it here when it is ready; this page shows its state."
        )
        % {"limit": f"{settings.EXPORT_INLINE_MAX_ROWS:,}"},
    )
    return HttpResponseRedirect(reverse("admin:refunds_export_changelist"))


@admin.register(Export)
class ExportAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Each user sees and downloads only their own exports; the files are never public
    (nothing serves MEDIA_URL), only this view hands them out."""

    list_display = ["__str__", "created_at", "state", "rows", "finished_at", "download"]
    list_display_links = None
    list_per_page = 50
    ordering = ["-created_at", "-pk"]
    fields = ["what", "fmt", "filters", "state", "rows", "error", "created_at", "started_at", "finished_at"]
    readonly_fields = fields
    change_list_template = "admin/refunds/export/change_list.html"

    def changelist_view(self, request, extra_context=None):
        writing = self.get_queryset(request).filter(state__in=[Export.State.QUEUED, Export.State.RUNNING]).exists()
        extra_context = {
            "title": _("Your exports"),
            "writing": writing,
            "keep_days": settings.EXPORT_KEEP_DAYS,
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context)

    def has_module_permission(self, request):
        return request.user.has_perm(perms.EXPORT_PAYOUT)

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm(perms.EXPORT_PAYOUT) and (obj is None or obj.requested_by_id == request.user.pk)

    def get_queryset(self, request):
        return super().get_queryset(request).filter(requested_by=request.user)

    @admin.display(description=_("file"))
    def download(self, obj):
        if obj.state == Export.State.DONE:
            url = reverse("admin:refunds_export_download", args=[obj.pk])
            return format_html('<a class="button" href="{}">{}</a>', url, _("Download"))
        if obj.state == Export.State.FAILED:
            return format_html('<span class="errornote rd-inline">{}</span>', obj.error)
        return "—"

    def get_urls(self):
        view = self.admin_site.admin_view
        return [path("<int:pk>/download/", view(self.download_view), name="refunds_export_download"), *super().get_urls()]

    def download_view(self, request, pk):
        export = Export.objects.filter(pk=pk, requested_by=request.user, state=Export.State.DONE).first()
        if export is None or not self.has_view_permission(request, export):
            raise Http404
        return FileResponse(
            export.file.open("rb"), as_attachment=True, filename=export.filename, content_type=CONTENT_TYPES[export.fmt]
        )
