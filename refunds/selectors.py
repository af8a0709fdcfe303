"""Reads for the staff screens: queues, a request's page, the role home page.

Every queryset here fetches what its screen shows in a fixed number of queries.
"""

from dataclasses import dataclass

from django.db.models import Count, Min, Prefetch
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from refunds.models import Payout, ReconciliationDifference, RefundEvent, RefundLine, RefundRequest, ReturnParcel, sources_of

State = RefundRequest.State

SUPPORT_QUEUE_STATES = [State.UNDER_REVIEW, State.AWAITING_CUSTOMER]
WAREHOUSE_QUEUE_STATES = [State.AWAITING_RETURN, State.RETURN_IN_TRANSIT]


def support_queue():
    """Requests for the support changelist; the state filter narrows it to the queue."""
    return RefundRequest.objects.select_related("channel")


def refund_for_page(refund_id: int) -> RefundRequest | None:
    """One request with everything its change page and evidence page show."""
    return (
        RefundRequest.objects.select_related(
            "channel",
            "customer",
            "order__channel",
            "approved_by",
            "first_approved_by",
            "verdict_by",
            "return_parcel",
            "inspection",
        )
        .prefetch_related(
            Prefetch("lines", queryset=RefundLine.objects.select_related("order_line").order_by("pk")),
        )
        .filter(pk=refund_id)
        .first()
    )


def refund_events(refund_id: int):
    return (
        RefundEvent.objects.filter(request_id=refund_id)
        .select_related("actor_user", "actor_channel", "payout")
        .order_by("at", "pk")
    )


def warehouse_queue():
    return ReturnParcel.objects.select_related("request")


def parcel_for_inspection(refund_id: int) -> ReturnParcel | None:
    return (
        ReturnParcel.objects.select_related("request")
        .prefetch_related(Prefetch("request__lines", queryset=RefundLine.objects.select_related("order_line").order_by("pk")))
        .filter(request_id=refund_id)
        .first()
    )


@dataclass
class QueueFigure:
    label: str
    count: int
    oldest_at: object
    url: str

    @property
    def oldest_age(self):
        return timezone.now() - self.oldest_at if self.oldest_at else None


def _state_figures(model, states, *, since_field: str, url_name: str, param: str, labels: dict):
    rows = {
        r["state"]: r
        for r in model.objects.filter(state__in=states).values("state").annotate(n=Count("pk"), oldest=Min(since_field))
    }
    base = reverse(url_name)
    return [
        QueueFigure(
            label=labels[s],
            count=rows.get(s, {}).get("n", 0),
            oldest_at=rows.get(s, {}).get("oldest"),
            url=f"{base}?{param}={s}",
        )
        for s in states
    ]


def home_queues(user) -> list[tuple[str, list[QueueFigure]]]:
    """The queues each of the user's roles opens first: how many wait, since when, where."""
    groups = set(user.groups.values_list("name", flat=True))
    everything = user.is_superuser
    sections = []
    if everything or "support" in groups:
        sections.append(
            (
                _("Support"),
                _state_figures(
                    RefundRequest,
                    SUPPORT_QUEUE_STATES,
                    since_field="state_changed_at",
                    url_name="admin:refunds_refundrequest_changelist",
                    param="queue",
                    labels=dict(State.choices),
                ),
            )
        )
    if everything or "warehouse" in groups:
        sections.append(
            (
                _("Warehouse"),
                _state_figures(
                    RefundRequest,
                    [*WAREHOUSE_QUEUE_STATES, State.RECEIVED],
                    since_field="state_changed_at",
                    url_name="admin:refunds_returnparcel_changelist",
                    param="queue",
                    labels=dict(State.choices),
                ),
            )
        )
    if everything or "finance" in groups:
        try:
            sections.append(
                (
                    _("Finance"),
                    [
                        *_state_figures(
                            Payout,
                            [Payout.State.PENDING_APPROVAL, Payout.State.OUTCOME_UNKNOWN, Payout.State.FAILED],
                            since_field="created_at",
                            url_name="admin:refunds_payout_changelist",
                            param="state",
                            labels=dict(Payout.State.choices),
                        ),
                        _differences_figure(),
                    ],
                )
            )
        except NoReverseMatch:
            # The payout changelist belongs to the finance screens; without it there is no queue to link.
            pass
    if everything or "risk" in groups:
        figures = _state_figures(
            RefundRequest,
            [State.UNDER_REVIEW],
            since_field="state_changed_at",
            url_name="admin:refunds_refundrequest_changelist",
            param="queue",
            labels={State.UNDER_REVIEW: _("Escalated, under review")},
        )
        sections.append((_("Risk"), [_watchlist_figure(), *figures]))
    return sections


def _differences_figure() -> QueueFigure:
    row = ReconciliationDifference.objects.filter(resolved_at__isnull=True).aggregate(n=Count("pk"), oldest=Min("first_seen_at"))
    return QueueFigure(
        label=_("Differences with the gateway's books"),
        count=row["n"],
        oldest_at=row["oldest"],
        url=reverse("admin:refunds_payout_reconciliation") + "#open-differences",
    )


def _watchlist_figure() -> QueueFigure:
    from risk.models import WatchlistEntry

    row = WatchlistEntry.objects.filter(WatchlistEntry.active_q(timezone.now())).aggregate(n=Count("pk"), oldest=Min("added_at"))
    return QueueFigure(
        label=_("Active watch-list entries"),
        count=row["n"],
        oldest_at=row["oldest"],
        url=reverse("admin:risk_watchlistentry_changelist"),
    )


# --- the lifecycle's timers -----------------------------------------------------------


def overdue_returns(*, now=None):
    """Requests still waiting for a parcel past the return deadline, oldest first."""
    now = now or timezone.now()
    return RefundRequest.objects.filter(state__in=sources_of(RefundRequest.expire), return_parcel__deadline__lt=now).order_by(
        "pk"
    )


def timed_out_awaiting_customer(*, before):
    """Requests waiting for the customer's answer to a question since before `before`. An
    offered alternative is not timed out here: declining it is the customer's call."""
    return RefundRequest.objects.filter(
        state__in=sources_of(RefundRequest.resume), alternative__isnull=True, state_changed_at__lt=before
    ).order_by("pk")
