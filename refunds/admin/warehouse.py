"""Admin screens: the warehouse's parcel queue, the scan page and the inspection form.

A barcode scanner is a keyboard: it types the code and presses Enter. The scan page has one
focused input; the POST marks the parcel received at once, then asks for the inspection.
Nothing here shows prices or the customer's personal data.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from config.actors import Actor
from config.admin_kit import DefaultQueueFilter, LargeTableAdmin, ReadOnlyAdminMixin
from refunds import permissions as perms
from refunds import selectors, services
from refunds.admin.requests import age_text, error_text
from refunds.errors import RefundError
from refunds.models import Inspection, RefundRequest, ReturnParcel

State = RefundRequest.State


class ParcelQueueFilter(DefaultQueueFilter):
    """Parcels expected or on their way by default; received ones or all on request."""

    title = _("state")
    parameter_name = "queue"
    default_label = _("Expected and in transit")

    def lookups(self, request, model_admin):
        return [
            (State.AWAITING_RETURN, State.AWAITING_RETURN.label),
            (State.RETURN_IN_TRANSIT, State.RETURN_IN_TRANSIT.label),
            (State.RECEIVED, _("Received, to inspect")),
            ("all", _("All")),
        ]

    def queue_queryset(self, request, queryset):
        value = self.value()
        if value in (None, ""):
            # Not received yet: lets the database walk the partial index in order.
            return queryset.filter(received_at__isnull=True, request__state__in=selectors.WAREHOUSE_QUEUE_STATES)
        if value == "all":
            return queryset
        if value in (State.AWAITING_RETURN, State.RETURN_IN_TRANSIT, State.RECEIVED):
            return queryset.filter(request__state=value)
        return queryset.none()


class ScanForm(forms.Form):
    code = forms.CharField(label=_("Return code or tracking number"), max_length=64)


class InspectionForm(forms.Form):
    grade = forms.ChoiceField(label=_("Grade"), choices=Inspection.Grade.choices, widget=forms.RadioSelect)
    disposition = forms.ChoiceField(label=_("Disposition"), choices=Inspection.Disposition.choices, widget=forms.RadioSelect)
    note = forms.CharField(label=_("Note"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    photo = forms.FileField(
        label=_("Photo (optional)"),
        required=False,
        help_text=_("A JPEG, PNG or WebP picture."),
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )


@admin.register(ReturnParcel)
class ReturnParcelAdmin(ReadOnlyAdminMixin, LargeTableAdmin, admin.ModelAdmin):
    list_display = ["return_code", "tracking", "request_number", "request_state", "age", "deadline"]
    list_filter = [ParcelQueueFilter]
    search_fields = ["return_code", "tracking_number"]
    search_help_text = _("A return code or a tracking number (exact).")
    ordering = ["created_at", "id"]
    list_per_page = 50
    change_list_template = "admin/refunds/returnparcel/change_list.html"
    fields = ["return_code", "request_number", "address", "deadline", "carrier", "tracking_number", "shipped_at", "received_at"]
    readonly_fields = fields

    def get_queryset(self, request):
        return selectors.warehouse_queue()

    def get_search_results(self, request, queryset, search_term):
        # What a scanner reads is exact; a LIKE over every parcel would scan the table.
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(return_code=term) | queryset.filter(tracking_number=term), False

    @admin.display(description=_("tracking"))
    def tracking(self, obj):
        return f"{obj.carrier} {obj.tracking_number}".strip() or "—"

    @admin.display(description=_("request"), ordering="request_id")
    def request_number(self, obj):
        return obj.request.number

    @admin.display(description=_("state"))
    def request_state(self, obj):
        return obj.request.get_state_display()

    @admin.display(description=_("age"), ordering="created_at")
    def age(self, obj):
        return age_text(obj.created_at)

    def changelist_view(self, request, extra_context=None):
        extra = {**(extra_context or {}), "can_scan": request.user.has_perm(perms.RECEIVE_RETURN)}
        return super().changelist_view(request, extra)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("scan/", wrap(self.scan_view), name="refunds_returnparcel_scan"),
            path("inspect/<int:refund_id>/", wrap(self.inspect_view), name="refunds_returnparcel_inspect"),
            *super().get_urls(),
        ]

    def _context(self, request, **kwargs):
        return {**self.admin_site.each_context(request), "opts": self.model._meta, **kwargs}

    def scan_view(self, request):
        if not request.user.has_perm(perms.RECEIVE_RETURN):
            raise PermissionDenied
        form = ScanForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                refund = services.return_receive(code=form.cleaned_data["code"], actor=Actor.for_user(request.user))
            except RefundError as exc:
                self.message_user(request, error_text(exc), messages.ERROR)
                return HttpResponseRedirect(reverse("admin:refunds_returnparcel_scan"))
            self.message_user(
                request, _("%(number)s received. Record the inspection.") % {"number": refund.number}, messages.SUCCESS
            )
            return HttpResponseRedirect(reverse("admin:refunds_returnparcel_inspect", args=[refund.pk]))
        return TemplateResponse(
            request, "admin/refunds/returnparcel/scan.html", self._context(request, title=_("Scan a return"), form=ScanForm())
        )

    def inspect_view(self, request, refund_id):
        if not request.user.has_perm(perms.RECEIVE_RETURN):
            raise PermissionDenied
        parcel = selectors.parcel_for_inspection(refund_id)
        if parcel is None:
            raise Http404
        if request.method == "POST":
            form = InspectionForm(request.POST, request.FILES)
            if form.is_valid():
                d = form.cleaned_data
                try:
                    refund = services.return_inspect(
                        refund_id=refund_id,
                        actor=Actor.for_user(request.user),
                        grade=d["grade"],
                        disposition=d["disposition"],
                        note=d["note"],
                        photo=d["photo"],
                    )
                except RefundError as exc:
                    self.message_user(request, error_text(exc), messages.ERROR)
                else:
                    if refund.state == State.READY_FOR_PAYOUT:
                        msg = _("%(number)s passed inspection and is ready for payout.")
                    else:
                        msg = _("%(number)s failed inspection and went back to support.")
                    self.message_user(request, msg % {"number": refund.number}, messages.SUCCESS)
                    return HttpResponseRedirect(reverse("admin:refunds_returnparcel_scan"))
        else:
            form = InspectionForm()
        return TemplateResponse(
            request,
            "admin/refunds/returnparcel/inspect.html",
            self._context(
                request,
                title=_("Inspect %(code)s") % {"code": parcel.return_code},
                parcel=parcel,
                refund=parcel.request,
                lines=parcel.request.lines.all(),
                form=form,
            ),
        )
