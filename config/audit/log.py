"""Registering a model with the audit log, and saying who acts when no request does.

In a request the actor is the logged-in user (auditlog's middleware). A service that changes
an audited model on someone's behalf outside a request (a task, a command, an approval that
applies another person's proposal) wraps the change in `acting(actor, ...)`.
"""

import contextlib

from auditlog.context import auditlog_value, set_extra_data
from auditlog.registry import auditlog

MASK_CALLABLE = "config.audit.log.mask"


def mask(value: str) -> str:
    """A secret's value is never copied into the log; the entry only says it changed."""
    return "••••••" if value else ""


def register(model, *, include=(), exclude=(), mask=(), m2m=()) -> None:
    """Audit every create, change and delete of `model`, old → new per field.

    One line per model, in the owning app's `AppConfig.ready`, e.g.
    `register(ChannelKey, mask=["key_hash"])`. `mask` fields are logged as "changed" without
    their values; `m2m` fields log what was added or removed.
    """
    # Own columns only: auditlog would otherwise list reverse relations ("orders") as fields.
    include = list(include) or [f.name for f in model._meta.concrete_fields]
    auditlog.register(
        model,
        include_fields=include,
        exclude_fields=list(exclude) or None,
        mask_fields=list(mask) or None,
        mask_callable=MASK_CALLABLE,
        m2m_fields=set(m2m) or None,
    )


def registered_models() -> list:
    return auditlog.get_models()


@contextlib.contextmanager
def acting(actor, **extra):
    """Entries written inside name `actor` (an `Actor`) and carry `extra` (a note, the
    pending change that was approved) in their `additional_data`."""
    try:
        outer = dict(auditlog_value.get())
    except LookupError:
        outer = {}
    data = {k: outer[k] for k in ("remote_addr", "remote_port") if outer.get(k) is not None}
    data["actor"] = getattr(actor, "user", None)  # the system, or a channel: no person
    if extra:
        data["additional_data"] = {k: v for k, v in extra.items() if v not in (None, "")} or None
    try:
        with set_extra_data(data):
            yield
    finally:
        # auditlog keeps one context per thread: give the request's back to what follows.
        if outer:
            auditlog_value.set(outer)
