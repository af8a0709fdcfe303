"""Changes that wait for a second admin: propose, approve (applies it), reject (discards it).

The apps decide what is a raise of a money limit (`refunds.services.policy`); this module
only keeps the proposal, refuses self-approval and applies the values under a lock.
"""

from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from config.actors import Actor
from config.audit.log import acting
from config.audit.models import PendingChange
from config.errors import ActionForbidden, DomainValidationError, NotAllowed

APPROVE = "audit.approve_pendingchange"


def pending_for(obj) -> PendingChange | None:
    ct = ContentType.objects.get_for_model(type(obj))
    return PendingChange.objects.filter(content_type=ct, object_id=obj.pk, state=PendingChange.State.PENDING).first()


def pending_change_propose(*, obj, changes: dict, actor: Actor, note: str = "") -> PendingChange:
    """Save `changes` ({field: new value}) of the saved `obj` for a second admin; `obj` keeps
    its values meanwhile. Refused while another change of the same object waits."""
    if not actor.is_user:
        raise ActionForbidden(_("Only a person can propose raising a money limit."))
    ct = ContentType.objects.get_for_model(type(obj))
    old = type(obj).objects.filter(pk=obj.pk).values(*changes).get()
    row = PendingChange(
        content_type=ct,
        object_id=obj.pk,
        object_repr=str(obj)[:200],
        changes={name: [_plain(old[name]), _plain(new)] for name, new in changes.items()},
        note=note[:200],
        proposed_by=actor.user,
    )
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:
        raise NotAllowed(
            _("A change of %(object)s already waits for approval; approve or reject it first.") % {"object": obj}
        ) from None
    return row


def pending_change_approve(*, change_id: int, actor: Actor, note: str = "") -> PendingChange:
    """A second admin applies the proposed values; the audit log records old → new with the
    approver as actor and the proposal's number. The proposer can't approve their own."""
    if not actor.has_perm(APPROVE):
        raise ActionForbidden(_("Only an admin can approve raising a money limit."))
    with transaction.atomic():
        change = _lock_pending(change_id)
        if change.proposed_by_id == actor.user.pk:
            raise ActionForbidden(_("You proposed this change: a second, different admin must approve it."))
        model = change.content_type.model_class()
        target = model.objects.select_for_update().filter(pk=change.object_id).first() if model else None
        if target is None:
            raise NotAllowed(_("%(object)s no longer exists; reject this change.") % {"object": change.object_repr})
        names = list(change.changes)
        field_of = {name: model._meta.get_field(name) for name in names}
        for name, (_old, new) in change.changes.items():
            setattr(target, name, field_of[name].to_python(new))
        with acting(actor, pending_change=change.pk, proposed_by=change.proposed_by.get_username(), note=note):
            target.save(update_fields=[*names, *_auto_now(model)])
        change.state, change.decided_by, change.decided_at = PendingChange.State.APPROVED, actor.user, timezone.now()
        change.decision_note = note[:200]
        change.save(update_fields=["state", "decided_by", "decided_at", "decision_note"])
    return change


def pending_change_reject(*, change_id: int, actor: Actor, note: str = "") -> PendingChange:
    """Discard the proposal; the object never had its values. An admin, or the proposer
    withdrawing it."""
    with transaction.atomic():
        change = _lock_pending(change_id)
        if not (actor.has_perm(APPROVE) or (actor.is_user and change.proposed_by_id == actor.user.pk)):
            raise ActionForbidden(_("Only an admin or the proposer can reject this change."))
        change.state, change.decided_by, change.decided_at = PendingChange.State.REJECTED, actor.user, timezone.now()
        change.decision_note = note[:200]
        change.save(update_fields=["state", "decided_by", "decided_at", "decision_note"])
    return change


def _lock_pending(change_id: int) -> PendingChange:
    change = PendingChange.objects.select_for_update(of=("self",)).filter(pk=change_id).select_related("content_type").first()
    if change is None:
        raise DomainValidationError({"change": [_("No such change.")]})
    if change.state != PendingChange.State.PENDING:
        raise NotAllowed(_("This change was already %(state)s.") % {"state": change.get_state_display().lower()})
    return change


def _auto_now(model) -> list[str]:
    return [f.name for f in model._meta.concrete_fields if getattr(f, "auto_now", False)]


def _plain(value):
    """JSON-safe as the proposer saw it: money as its string, never a float."""
    return value if isinstance(value, bool | int | str) or value is None else str(value)
