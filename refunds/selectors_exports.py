"""Reads behind finance's exports: which payouts or refund requests a filter selects.

The admin's lists and export buttons and the background export task call the same functions
with the same filter — a plain dict, stored as such on the `Export` row — so a file written
later by the cluster holds what the screen would have written, and nothing builds a request
or runs an admin view to find out. Each filter is parsed by one form, whoever calls.
"""

from collections.abc import Mapping
from datetime import date

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from config.errors import ActionForbidden, DomainValidationError
from orders.models import Channel
from refunds import permissions as perms
from refunds.models import Export, Payout, RefundMethod, RefundRequest
from refunds.selectors_finance import day_bounds, payout_list, refund_export_list

ALL = "all"


class ExportFilterError(DomainValidationError):
    """A filter the list does not know, or a value it does not take; `errors` per field."""


def ensure_may_export(user) -> None:
    """Exports are finance's (and the administrators'): checked for every file, at once or later."""
    if not (user.is_active and user.has_perm(perms.EXPORT_PAYOUT)):
        raise ActionForbidden(gettext("%(user)s may not export payouts or refund requests.") % {"user": user.get_username()})


def _parse(form_class, data: Mapping) -> dict:
    unknown = sorted(set(data) - set(form_class.base_fields))
    if unknown:
        raise ExportFilterError({name: [gettext("This list has no such filter.")] for name in unknown})
    form = form_class(data=data)
    if not form.is_valid():
        raise ExportFilterError({name: [str(m) for m in messages] for name, messages in form.errors.items()})
    return form.filters()


# --- payouts -----------------------------------------------------------------------------


class PayoutFilterForm(forms.Form):
    """The payout list's filter: its `state` (the queue, `pending_approval`, when not given),
    `method` and search `q`."""

    state = forms.ChoiceField(choices=[*Payout.State.choices, (ALL, _("All"))], required=False)
    method = forms.ChoiceField(choices=RefundMethod.choices, required=False)
    q = forms.CharField(max_length=100, required=False)

    def filters(self) -> dict:
        data = self.cleaned_data
        # The default is written out, so a stored filter means the same whatever the default becomes.
        out = {"state": data["state"] or Payout.State.PENDING_APPROVAL}
        out.update({k: data[k].strip() for k in ("method", "q") if data[k].strip()})
        return out


def payout_filters(data: Mapping) -> dict:
    """The filter as stored on an export, e.g. {"state": "failed", "method": "coupon"}; raises
    ExportFilterError."""
    return _parse(PayoutFilterForm, data)


def payouts_filtered(queryset: QuerySet[Payout], *, state: str | None = None, method: str = "", q: str = "") -> QuerySet[Payout]:
    """Narrow payouts the way the list's filters and search do (`state=None`: any state)."""
    if state is not None and state != ALL:
        queryset = queryset.filter(state=state)
    if method:
        queryset = queryset.filter(method=method)
    term = q.strip()
    if term:
        # Exact lookups only: PO-000123, RF-000123, a bare payout number, or an order number.
        upper = term.upper()
        for prefix, field in (("PO-", "pk"), ("RF-", "request_id")):
            if upper.startswith(prefix) and upper[len(prefix) :].isdigit():
                return queryset.filter(**{field: int(upper[len(prefix) :])})
        if term.isdigit():
            return queryset.filter(pk=int(term))
        queryset = queryset.filter(request__order__number=term)
    return queryset


def payout_export_rows(*, user, filters: Mapping) -> QuerySet[Payout]:
    """The payouts an export of this filter writes, oldest first, with what each line reads.
    Raises ActionForbidden (the user may not export) or ExportFilterError."""
    ensure_may_export(user)
    return payouts_filtered(payout_list(), **payout_filters(filters)).order_by("pk")


# --- refund requests ---------------------------------------------------------------------


class RefundRequestFilterForm(forms.Form):
    """The refund-request export's filter: a state, channels picked from the ones that exist,
    and a range of creation days (the desk's time zone)."""

    state = forms.ChoiceField(label=_("state"), choices=[("", _("All")), *RefundRequest.State.choices], required=False)
    channels = forms.ModelMultipleChoiceField(
        label=_("channels"),
        queryset=Channel.objects.order_by("name", "pk"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every channel."),
    )
    created_from = forms.DateField(label=_("created from"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    created_to = forms.DateField(label=_("created to"), required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        start, end = data.get("created_from"), data.get("created_to")
        if start and end and end < start:
            raise forms.ValidationError(gettext("The end date is before the start date."))
        return data

    def filters(self) -> dict:
        data, out = self.cleaned_data, {}
        if data["state"]:
            out["state"] = data["state"]
        if data["channels"]:
            out["channels"] = sorted(c.pk for c in data["channels"])
        for name in ("created_from", "created_to"):
            if data[name]:
                out[name] = data[name].isoformat()
        return out


def refund_request_filters(data: Mapping) -> dict:
    """The filter as stored on an export, e.g. {"state": "refunded", "channels": [3]}; raises
    ExportFilterError (a channel that does not exist is refused, not matched to nothing)."""
    return _parse(RefundRequestFilterForm, data)


def refund_requests_filtered(
    queryset: QuerySet[RefundRequest],
    *,
    state: str = "",
    channels: list[int] | None = None,
    created_from: str | date | None = None,
    created_to: str | date | None = None,
) -> QuerySet[RefundRequest]:
    if state:
        queryset = queryset.filter(state=state)
    if channels:
        queryset = queryset.filter(channel_id__in=channels)
    if created_from:
        start = date.fromisoformat(created_from) if isinstance(created_from, str) else created_from
        queryset = queryset.filter(created_at__gte=day_bounds(start, start)[0])
    if created_to:
        end = date.fromisoformat(created_to) if isinstance(created_to, str) else created_to
        queryset = queryset.filter(created_at__lt=day_bounds(end, end)[1])
    return queryset


def refund_request_export_rows(*, user, filters: Mapping) -> QuerySet[RefundRequest]:
    """The refund requests an export of this filter writes, oldest first. Raises
    ActionForbidden or ExportFilterError."""
    ensure_may_export(user)
    return refund_requests_filtered(refund_export_list(), **refund_request_filters(filters)).order_by("pk")


def export_rows(*, what: str, user, filters: Mapping) -> QuerySet:
    """The rows of an export of `what` (an `Export.What`)."""
    if what == Export.What.PAYOUTS:
        return payout_export_rows(user=user, filters=filters)
    if what == Export.What.REFUND_REQUESTS:
        return refund_request_export_rows(user=user, filters=filters)
    raise ValueError(f"Unknown export {what!r}.")
