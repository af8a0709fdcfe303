"""Risk in the admin: the watch list, the settings (each change logged), profiles, the report.

Writes go through `risk.services` (one call each); refusals become admin messages.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from config.actors import Actor
from config.admin_kit import ReadOnlyAdminMixin
from config.errors import DomainError
from orders.admin import MaskedSearchMixin
from risk import selectors, services
from risk.models import RiskProfile, RiskSettings, WatchlistEntry

PERM_REPORT = "risk.view_risksettings"


class ActiveFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("live", _("live")), ("ended", _("removed or expired"))]

    def queryset(self, request, queryset):
        live = WatchlistEntry.active_q(timezone.now())
        if self.value() == "live":
            return queryset.filter(live)
        if self.value() == "ended":
            return queryset.exclude(live)
        return queryset


class WatchlistEntryForm(forms.ModelForm):
    remove_with_note = forms.CharField(
        label=_("Remove with note"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Fill in to take this entry off the list."),
    )

    class Meta:
        model = WatchlistEntry
        fields = ["customer", "note", "expires_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "note" in self.fields:
            self.fields["note"].required = True  # by hand always says why


@admin.register(WatchlistEntry)
class WatchlistEntryAdmin(MaskedSearchMixin, admin.ModelAdmin):
    form = WatchlistEntryForm
    list_display = ["__str__", "customer", "reason", "source", "added_at", "expires_at", "removed_at", "added_by"]
    list_filter = [ActiveFilter, "reason", "source"]
    list_select_related = ["customer", "added_by"]
    # The phone only for those who see it whole; the last four for the masked roles too.
    search_fields = ["customer__name", "customer__external_id"]
    phone_search_field = "customer__phone"
    last_four_search = True
    raw_id_fields = ["customer"]

    # An entry is never edited: it is added, and later removed with a note.
    ENTRY_FIELDS = [
        "customer",
        "reason",
        "source",
        "evidence",
        "added_by",
        "added_at",
        "expires_at",
        "removed_at",
        "removed_by",
        "note",
    ]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["customer", "note", "expires_at"]
        removable = obj.removed_at is None and self.has_change_permission(request, obj)
        return self.ENTRY_FIELDS + (["remove_with_note"] if removable else [])

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.ENTRY_FIELDS

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm(services.PERM_MANAGE_WATCHLIST) and super().has_change_permission(request, obj)

    def has_add_permission(self, request):
        return request.user.has_perm(services.PERM_MANAGE_WATCHLIST) and super().has_add_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False  # entries are removed with a note, never deleted

    def save_model(self, request, obj, form, change):
        actor = Actor.for_user(request.user)
        try:
            if not change:
                created = services.watchlist_add(
                    customer_id=form.cleaned_data["customer"].pk,
                    actor=actor,
                    note=form.cleaned_data["note"],
                    expires_at=form.cleaned_data.get("expires_at"),
                )
                obj.pk = created.pk
            elif form.cleaned_data.get("remove_with_note"):
                services.watchlist_remove(entry_id=obj.pk, actor=actor, note=form.cleaned_data["remove_with_note"])
        except DomainError as e:
            messages.error(request, e.message)


class RiskSettingsForm(forms.ModelForm):
    change_note = forms.CharField(
        label=_("Change note"), required=False, max_length=200, help_text=_("Why (kept in the audit log).")
    )

    class Meta:
        model = RiskSettings
        fields = [f.name for f in RiskSettings._meta.concrete_fields if f.name not in ("id", "updated_at")]


@admin.register(RiskSettings)
class RiskSettingsAdmin(admin.ModelAdmin):
    form = RiskSettingsForm
    readonly_fields = ["updated_at"]

    def has_add_permission(self, request):
        return False  # one row, made by the migration

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name != "change_note"}
        try:
            services.risk_settings_update(
                actor=Actor.for_user(request.user), changes=changes, note=form.cleaned_data.get("change_note", "")
            )
        except DomainError as e:
            messages.error(request, e.message)


@admin.register(RiskProfile)
class RiskProfileAdmin(MaskedSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "customer",
        "orders_90d",
        "refunded_orders_90d",
        "bulk_orders_mostly_returned",
        "address_changes_30d",
        "requests_7d",
        "shared_phone_accounts",
        "shared_address_accounts",
        "abusive_verdicts",
        "computed_at",
    ]
    list_select_related = ["customer"]
    # The phone only for those who see it whole; the last four for the masked roles too.
    search_fields = ["customer__name", "customer__external_id"]
    phone_search_field = "customer__phone"
    last_four_search = True

    def get_urls(self):
        return [path("report/", self.admin_site.admin_view(self.report_view), name="risk_report"), *super().get_urls()]

    def report_view(self, request):
        if not request.user.has_perm(PERM_REPORT):
            raise PermissionDenied
        report = selectors.abuse_report()
        return TemplateResponse(
            request,
            "admin/risk/report.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Risk report"),
                "opts": self.model._meta,
                "report": report,
                "chart": _bar_chart(report.weeks),
            },
        )


def _bar_chart(weeks: list[dict], *, width: int = 640, height: int = 160) -> list[dict]:
    """Bars for an inline SVG of the abusive rate per week (no JavaScript, no CDN)."""
    if not weeks:
        return []
    step = width / len(weeks)
    return [
        {
            "x": round(i * step + 2, 1),
            "w": round(max(step - 4, 1), 1),
            "h": round(row["rate"] * height, 1),
            "y": round(height - row["rate"] * height, 1),
            "label": f"{row['key']:%d %b}",
            "rate": row["rate"],
        }
        for i, row in enumerate(weeks)
    ]
