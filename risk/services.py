"""The risk score as the rest of the product reads it, and every write risk makes.

Other apps call only `assess_customer`, `is_watchlisted` and `customer_changed`. Profiles are
rewritten set-wise by `risk.profiles`; the watch list and the settings change only here.
"""

from datetime import timedelta

from django.db import transaction
from django.db.models import Exists, Q
from django.utils import timezone

from config.actors import Actor
from config.audit.log import acting
from config.errors import ActionForbidden, DomainValidationError
from config.q2 import enqueue_on_commit
from notifications.services import notify_staff
from risk import profiles
from risk.models import RiskProfile, RiskSettings, WatchlistEntry
from risk.scoring import NEUTRAL, Assessment, pattern_q, patterns_of, score_profile

__all__ = ["NEUTRAL", "Assessment", "assess_customer", "is_watchlisted", "customer_changed"]

PERM_MANAGE_WATCHLIST = "risk.manage_watchlist"
PERM_CHANGE_SETTINGS = "risk.change_risksettings"
# Above this many new entries in one pass the risk role gets one summary, not a flood.
NOTIFY_EACH_UP_TO = 20


def assess_customer(*, customer, refund=None) -> Assessment:
    """Bring the customer's profile up to date and score it, in five queries whatever the
    history (plus the inserts when a pattern newly fires).

    Called by the intake task (first step of `refund_evaluate`, under the request's locks,
    before any decision), so the request itself counts. May add automatic watch-list entries;
    a request from a listed customer notifies the risk role.
    """
    settings = RiskSettings.current()
    now = timezone.now()
    profile, reasons = _refresh_linked(customer.pk, settings, now)
    # This transaction cannot see requests of linked accounts being submitted at the same
    # moment; a recompute after commit makes the stored profile whole again.
    customer_changed(customer_id=customer.pk)
    assessment = score_profile(profile, settings, now)
    if refund is not None and reasons:
        notify_staff(
            role="risk",
            event="watchlist_hit",
            refund=refund,
            context={
                "customer_id": customer.pk,
                "customer_name": customer.name,
                "reason": ", ".join(str(WatchlistEntry.Reason(r).label) for r in sorted(reasons)),
                "score": assessment.score,
            },
        )
    return assessment


def is_watchlisted(*, customer, now=None) -> bool:
    """A live entry: not removed and not expired."""
    return WatchlistEntry.objects.filter(WatchlistEntry.active_q(now or timezone.now()), customer_id=customer.pk).exists()


def customer_changed(*, customer_id: int) -> None:
    """Called after an order, an address change or a refund request of the customer is
    recorded: the profile is recomputed in a task once the change commits."""
    enqueue_on_commit("risk.tasks.recompute_customer", customer_id)


def recompute_customer(*, customer_id: int) -> None:
    """Incremental update: the customer and every account linked to it by phone or address."""
    with transaction.atomic():
        _refresh_linked(customer_id, RiskSettings.current(), timezone.now())


def _refresh_linked(customer_id: int, settings: RiskSettings, now) -> tuple[RiskProfile | None, set[str]]:
    """Recompute the customer and its linked accounts, add entries for patterns that fire;
    return the customer's profile and the reasons it is on the watch list now (empty: not
    listed). Four queries."""
    scope = profiles.linked_customers(customer_id)
    profiles.recompute(customer_ids=scope, settings=settings, now=now)
    in_scope = list(RiskProfile.objects.filter(customer_id__in=scope))
    live = list(
        WatchlistEntry.objects.filter(WatchlistEntry.active_q(now), customer_id__in=scope).values_list(
            "customer_id", "reason", "source"
        )
    )
    auto = {(c, reason) for c, reason, source in live if source == WatchlistEntry.Source.AUTO}
    new = _add_entries(in_scope, auto, settings, now)
    reasons = {r for c, r, _ in live if c == customer_id} | {e.reason for e in new if e.customer_id == customer_id}
    profile = next((p for p in in_scope if p.customer_id == customer_id), None)
    return profile, reasons


def recompute_all() -> int:
    """Full recompute: one statement for the profiles, then the watch-list patterns."""
    settings = RiskSettings.current()
    now = timezone.now()
    with transaction.atomic():
        n = profiles.recompute(settings=settings, now=now)
        candidates = list(RiskProfile.objects.filter(pattern_q(settings)))
        auto = set(
            WatchlistEntry.objects.filter(
                WatchlistEntry.active_q(now),
                source=WatchlistEntry.Source.AUTO,
                customer_id__in=RiskProfile.objects.filter(pattern_q(settings)).values("customer_id"),
            ).values_list("customer_id", "reason")
        )
        _add_entries(candidates, auto, settings, now)
    return n


def _add_entries(candidates, live_auto: set, settings: RiskSettings, now) -> list[WatchlistEntry]:
    """An automatic entry for every pattern that fires on a candidate and has no live one yet.

    Only profiles on which a pattern fires are read for the full pass, so this loops over
    hits, never over every customer.
    """
    expires_at = now + timedelta(days=settings.watchlist_days)
    new = [
        WatchlistEntry(
            customer_id=p.customer_id,
            reason=reason,
            evidence=evidence,
            source=WatchlistEntry.Source.AUTO,
            added_at=now,
            expires_at=expires_at,
        )
        for p in candidates
        for reason, evidence in patterns_of(p, settings)
        if (p.customer_id, reason) not in live_auto
    ]
    if not new:
        return []
    created = WatchlistEntry.objects.bulk_create(new, batch_size=2000)
    if len(created) <= NOTIFY_EACH_UP_TO:
        for entry in created:
            notify_staff(
                role="risk",
                event="watchlist_added",
                context={"customer_id": entry.customer_id, "reason": entry.reason, "evidence": entry.evidence},
            )
    else:
        notify_staff(role="risk", event="watchlist_added", context={"count": len(created)})
    return created


# --- by hand ---------------------------------------------------------------------------------


def watchlist_add(*, customer_id: int, actor: Actor, note: str, expires_at=None) -> WatchlistEntry:
    """Put a customer on the watch list by hand; the note says why."""
    if not actor.has_perm(PERM_MANAGE_WATCHLIST):
        raise ActionForbidden(f"{actor.label} may not change the watch list.")
    if not note.strip():
        raise DomainValidationError({"note": ["Say why the customer goes on the watch list."]})
    return WatchlistEntry.objects.create(
        customer_id=customer_id,
        reason=WatchlistEntry.Reason.MANUAL,
        source=WatchlistEntry.Source.MANUAL,
        added_by=actor.user,
        expires_at=expires_at,
        note=note.strip(),
    )


def watchlist_remove(*, entry_id: int, actor: Actor, note: str) -> WatchlistEntry:
    """Take an entry off (kept, marked removed); the note says why."""
    if not actor.has_perm(PERM_MANAGE_WATCHLIST):
        raise ActionForbidden(f"{actor.label} may not change the watch list.")
    if not note.strip():
        raise DomainValidationError({"note": ["Say why the entry is removed."]})
    with transaction.atomic():
        entry = WatchlistEntry.objects.select_for_update().get(pk=entry_id)
        if entry.removed_at is None:
            entry.removed_at, entry.removed_by = timezone.now(), actor.user
            entry.note = f"{entry.note}\nremoved: {note.strip()}".strip()
            entry.save(update_fields=["removed_at", "removed_by", "note"])
    return entry


def risk_settings_update(*, actor: Actor, changes: dict, note: str = "") -> RiskSettings:
    """Change weights or thresholds; the audit log records the fields that moved, old → new,
    with the note."""
    if not actor.has_perm(PERM_CHANGE_SETTINGS):
        raise ActionForbidden(f"{actor.label} may not change the risk settings.")
    editable = {f.name for f in RiskSettings._meta.concrete_fields} - {"id", "updated_at"}
    unknown = set(changes) - editable
    if unknown:
        raise DomainValidationError({name: ["Not a risk setting."] for name in sorted(unknown)})
    with transaction.atomic():
        RiskSettings.current()
        current = RiskSettings.objects.select_for_update().get(pk=1)
        moved = []
        for name, value in changes.items():
            if str(getattr(current, name)) != str(value):
                setattr(current, name, value)
                moved.append(name)
        if moved:
            with acting(actor, note=note):
                current.save(update_fields=[*moved, "updated_at"])
    return current


class _Assessor:
    """What the refund workflow asks of risk (`refunds.assessment.RiskAssessor`); named by
    `REFUND_DESK["RISK_ASSESSOR"]` so refunds need not import risk. Looks the functions up
    at call time, so a test that replaces one of them is heard."""

    def assess_customer(self, *, customer, refund=None) -> Assessment:
        return assess_customer(customer=customer, refund=refund)

    def is_watchlisted(self, *, customer) -> bool:
        return is_watchlisted(customer=customer)

    def listed_at(self, *, customer, at):
        """`Exists` of a watch-list entry live at `at` for `customer` (expressions such as
        `OuterRef`s), for set-based reads such as the policy dry run."""
        return Exists(
            WatchlistEntry.objects.filter(
                Q(removed_at__isnull=True) | Q(removed_at__gt=at),
                Q(expires_at__isnull=True) | Q(expires_at__gt=at),
                customer_id=customer,
                added_at__lte=at,
            )
        )


ASSESSOR = _Assessor()
