"""The admin's home page: each role's queues, how many wait, since when, and where."""

from dataclasses import dataclass

from django.db.models import Count, Min
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from config.audit.models import PendingChange
from config.audit.services import APPROVE
from refunds.models import Payout, ReconciliationDifference, RefundRequest
from refunds.selectors import SUPPORT_QUEUE_STATES, WAREHOUSE_QUEUE_STATES
from risk.models import WatchlistEntry

State = RefundRequest.State


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
    if user.has_perm(APPROVE):
        sections.append((_("Admin"), [_pending_changes_figure(user)]))
    return sections


def _pending_changes_figure(user) -> QueueFigure:
    """Raises of money limits waiting for a second admin: the ones others proposed."""
    row = (
        PendingChange.objects.filter(state=PendingChange.State.PENDING)
        .exclude(proposed_by=user)
        .aggregate(n=Count("pk"), oldest=Min("proposed_at"))
    )
    return QueueFigure(
        label=_("Money-limit raises waiting for your approval"),
        count=row["n"],
        oldest_at=row["oldest"],
        url=reverse("admin:audit_pendingchange_changelist") + "?state=pending",
    )


def _differences_figure() -> QueueFigure:
    row = ReconciliationDifference.objects.filter(resolved_at__isnull=True).aggregate(n=Count("pk"), oldest=Min("first_seen_at"))
    return QueueFigure(
        label=_("Differences with the gateway's books"),
        count=row["n"],
        oldest_at=row["oldest"],
        url=reverse("admin:refunds_payout_reconciliation") + "#open-differences",
    )


def _watchlist_figure() -> QueueFigure:
    row = WatchlistEntry.objects.filter(WatchlistEntry.active_q(timezone.now())).aggregate(n=Count("pk"), oldest=Min("added_at"))
    return QueueFigure(
        label=_("Active watch-list entries"),
        count=row["n"],
        oldest_at=row["oldest"],
        url=reverse("admin:risk_watchlistentry_changelist"),
    )
