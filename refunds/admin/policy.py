"""Admin screens: the refund policy, with a dry run before every save.

Saving a changed policy takes two steps: the form posts, the admin answers with what the new
policy would have decided on the last N days of requests next to what the live one decided
(`refunds.selectors_policy.policy_dry_run`), and only "Confirm and save" saves it. The risk role and
admins edit policies; the risk threshold is one of the policy's rules.
"""

import copy

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from config.actors import Actor
from config.errors import DomainError
from refunds import rules, services
from refunds.models import DEFAULT_DISPUTE_REASONS, PayoutSettings, Reason, RefundPolicy
from refunds.selectors_policy import policy_dry_run

CONFIRM = "_confirm_dry_run"
DAYS = "_dry_run_days"
CONTROL = {CONFIRM, DAYS, "_rerun", "csrfmiddlewaretoken", "_save", "_continue", "_addanother"}
DEFAULT_DAYS = 30
MAX_DAYS = 365


def _days(request) -> int:
    try:
        return max(1, min(MAX_DAYS, int(request.POST.get(DAYS, DEFAULT_DAYS))))
    except (TypeError, ValueError):
        return DEFAULT_DAYS


class RefundPolicyForm(forms.ModelForm):
    """The policy as the merchant edits it: dispute reasons are ticked from the product's own
    reasons, not typed as a JSON list where a misspelt reason would silently never match."""

    dispute_reasons = forms.MultipleChoiceField(
        label=_("Dispute reasons"),
        choices=Reason.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("Requests with a ticked reason go to a person."),
    )

    class Meta:
        model = RefundPolicy
        fields = ["dispute_reasons_enabled", "dispute_reasons"]  # the admin's fieldsets add the rest

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.initial.get("dispute_reasons"):
            # What the rule engine applies to an empty list (`refunds.rules`), shown as such.
            self.initial["dispute_reasons"] = list(DEFAULT_DISPUTE_REASONS)

    def clean_dispute_reasons(self):
        ticked = set(self.cleaned_data["dispute_reasons"])
        return [value for value in Reason.values if value in ticked]  # in the reasons' own order

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("dispute_reasons_enabled") and not cleaned.get("dispute_reasons"):
            self.add_error("dispute_reasons", _("Tick at least one reason, or switch this rule off."))
        return cleaned


@admin.register(RefundPolicy)
class RefundPolicyAdmin(admin.ModelAdmin):
    form = RefundPolicyForm
    list_display = ["name", "channel", "return_window_days", "auto_approve_limit", "risk_threshold", "updated_at"]
    list_select_related = ["channel"]
    search_fields = ["name", "channel__name"]
    readonly_fields = ["updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "channel"]}),
        (_("Order and window"), {"fields": ["require_paid_enabled", "return_window_enabled", "return_window_days"]}),
        (_("Amounts"), {"fields": ["auto_approve_limit_enabled", "auto_approve_limit", "keep_it_enabled", "keep_it_below"]}),
        (
            _("Reasons and carriers"),
            {
                "fields": [
                    "dispute_reasons_enabled",
                    "dispute_reasons",
                    "not_received_check_enabled",
                    "shipping_delay_alternative_enabled",
                ]
            },
        ),
        (
            _("Risk"),
            {
                "fields": [
                    "risk_threshold_enabled",
                    "risk_threshold",
                    "watchlist_enabled",
                    "max_refunds_per_order_enabled",
                    "max_refunds_per_order",
                    "updated_at",
                ]
            },
        ),
    ]

    def save_model(self, request, obj, form, change):
        try:
            result = services.policy_save(policy=obj, actor=Actor.for_user(request.user))
        except DomainError as e:
            messages.error(request, e.message)
            return
        _say_waiting(request, result, form)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST" and CONFIRM not in request.POST:
            response = self._dry_run(request, object_id)
            if response is not None:
                return response
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _dry_run(self, request, object_id):
        """The comparison page, or None to let the admin show the form (and its errors)."""
        obj = self.get_object(request, unquote(object_id)) if object_id else None
        if object_id and (obj is None or not self.has_change_permission(request, obj)):
            return None
        if not object_id and not self.has_add_permission(request):
            return None
        live = copy.copy(obj) if obj is not None else None
        form = self.get_form(request, obj, change=obj is not None)(request.POST, request.FILES, instance=obj)
        if not form.is_valid():
            return None
        proposed = form.save(commit=False)
        if live is None:
            live = rules.policy_for(proposed.channel)  # what governs these requests today
        days = _days(request)
        result = policy_dry_run(live=live, proposed=proposed, days=days)
        replay = [(k, v) for k, values in request.POST.lists() if k not in CONTROL for v in values]
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Dry run: %(name)s") % {"name": proposed.name},
            "opts": self.model._meta,
            "original": obj,
            "result": result,
            "replay": replay,
            "days": days,
            "changed_fields": form.changed_data,
            "live": live,
            "raises": [str(form.fields[n].label) for n in services.policy_raises(live, proposed) if n in form.fields],
        }
        return TemplateResponse(request, "admin/refunds/refundpolicy/dry_run.html", context)


def _say_waiting(request, result, form) -> None:
    """Tell the proposer which raise waits, and that the old value keeps applying."""
    if result.pending is None:
        return
    labels = ", ".join(str(form.fields[n].label) if n in form.fields else n for n in result.waiting)
    url = reverse("admin:audit_pendingchange_change", args=[result.pending.pk])
    messages.warning(
        request,
        format_html(
            '{} <a href="{}">{}</a>',
            gettext("Raising %(fields)s needs a second admin's approval; until then the old value keeps applying.")
            % {"fields": labels},
            url,
            str(result.pending),
        ),
    )


class PayoutSettingsForm(forms.ModelForm):
    change_note = forms.CharField(
        label=_("Change note"), required=False, max_length=200, help_text=_("Why (kept in the audit log).")
    )

    class Meta:
        model = PayoutSettings
        fields = ["four_eyes_above"]

    def clean_four_eyes_above(self):
        value = self.cleaned_data["four_eyes_above"]
        if value is not None and value < 0:
            raise forms.ValidationError(_("The amount can't be negative."))
        return value


@admin.register(PayoutSettings)
class PayoutSettingsAdmin(admin.ModelAdmin):
    """The four-eyes threshold: admins change it (a raise waits for a second admin); finance reads it."""

    form = PayoutSettingsForm
    list_display = ["__str__", "four_eyes_above", "in_force", "updated_at"]
    readonly_fields = ["in_force", "updated_at"]

    def has_add_permission(self, request):
        return False  # one row, made by the migration

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("in force"))
    def in_force(self, obj):
        return services.four_eyes_limit()

    def save_model(self, request, obj, form, change):
        try:
            result = services.payout_settings_update(
                four_eyes_above=form.cleaned_data["four_eyes_above"],
                actor=Actor.for_user(request.user),
                note=form.cleaned_data.get("change_note", ""),
            )
        except DomainError as e:
            messages.error(request, e.message)
            return
        _say_waiting(request, result, form)
