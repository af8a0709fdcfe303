"""Changing the money limits: the refund policy's amounts and the payouts' four-eyes threshold.

A change that lets more money out without a person looking (a higher auto-approve limit, a
higher "keep it, no return" amount, a higher four-eyes threshold, or switching a limit off)
is saved as a pending change and applies only when a second admin approves it
(`config.audit.services`); until then every decision uses the old value. A lowering, and
every other field, applies at once. Every applied change is in the audit log, old → new.
"""

from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from config.actors import Actor
from config.audit.log import acting
from config.audit.models import PendingChange
from config.audit.services import pending_change_propose, pending_for
from refunds import rules
from refunds.errors import ActionForbidden, RefundNotAllowed
from refunds.models import PayoutSettings, RefundPolicy

INFINITE = Decimal("Infinity")
CHANGE_POLICY = "refunds.change_refundpolicy"
ADD_POLICY = "refunds.add_refundpolicy"
CHANGE_PAYOUT_SETTINGS = "refunds.change_payoutsettings"


def _auto_approve(p) -> Decimal:
    # Switched off, the rule lets any amount through: the limit is infinite.
    return p.auto_approve_limit if p.auto_approve_limit_enabled else INFINITE


def _keep_it(p) -> Decimal:
    # Switched off, every refund needs its return: nothing is kept.
    return p.keep_it_below if p.keep_it_enabled else Decimal("0")


# Each money limit of the policy: its fields, and the amount it effectively lets through.
POLICY_LIMITS = [
    (("auto_approve_limit_enabled", "auto_approve_limit"), _auto_approve),
    (("keep_it_enabled", "keep_it_below"), _keep_it),
]
LIMIT_FIELDS = {name for names, _effective in POLICY_LIMITS for name in names}


@dataclass
class LimitChange:
    obj: object
    pending: PendingChange | None = None
    waiting: dict = field(default_factory=dict)  # field -> proposed value, not applied


def policy_raises(live: RefundPolicy, proposed: RefundPolicy) -> dict:
    """The limit fields of `proposed` that would let more through than `live` does."""
    raised = {}
    for names, effective in POLICY_LIMITS:
        if effective(proposed) > effective(live):
            raised.update({n: getattr(proposed, n) for n in names if getattr(proposed, n) != getattr(live, n)})
    return raised


def policy_save(*, policy: RefundPolicy, actor: Actor, note: str = "") -> LimitChange:
    """Save a new or changed policy (the admin's form, validated). Its raised money limits
    keep their live values and wait for a second admin; the rest applies now.

    A new policy is compared with the one that governs its channel today."""
    if not actor.has_perm(CHANGE_POLICY if policy.pk else ADD_POLICY):
        raise ActionForbidden(_("%(actor)s may not change refund policies.") % {"actor": actor.label})
    with transaction.atomic():
        if policy.pk:
            live = RefundPolicy.objects.select_for_update().get(pk=policy.pk)
        else:
            live = rules.policy_for(policy.channel)
        raised = policy_raises(live, policy)
        if raised and policy.pk and pending_for(policy) is not None:
            raise RefundNotAllowed(
                _("A change of %(object)s already waits for approval; approve or reject it first.") % {"object": policy}
            )
        for name in raised:
            setattr(policy, name, getattr(live, name))
        with acting(actor, note=note):
            policy.save()
        pending = pending_change_propose(obj=policy, changes=raised, actor=actor, note=note) if raised else None
    return LimitChange(obj=policy, pending=pending, waiting=raised)


def payout_settings_update(*, four_eyes_above: Decimal | None, actor: Actor, note: str = "") -> LimitChange:
    """Set the four-eyes threshold (None: the deployment's setting). A raise waits for a
    second admin; a lowering applies at once."""
    if not actor.has_perm(CHANGE_PAYOUT_SETTINGS):
        raise ActionForbidden(_("%(actor)s may not change the payout settings.") % {"actor": actor.label})
    default = Decimal(settings.REFUND_DESK["PAYOUT_FOUR_EYES_ABOVE"])
    with transaction.atomic():
        PayoutSettings.current()
        row = PayoutSettings.objects.select_for_update().get(pk=1)
        old = row.four_eyes_above if row.four_eyes_above is not None else default
        new = four_eyes_above if four_eyes_above is not None else default
        if four_eyes_above == row.four_eyes_above:
            return LimitChange(obj=row)
        if new > old:
            pending = pending_change_propose(obj=row, changes={"four_eyes_above": four_eyes_above}, actor=actor, note=note)
            return LimitChange(obj=row, pending=pending, waiting={"four_eyes_above": four_eyes_above})
        row.four_eyes_above = four_eyes_above
        with acting(actor, note=note):
            row.save(update_fields=["four_eyes_above", "updated_at"])
    return LimitChange(obj=row)
