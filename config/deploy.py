"""What a process refuses to start without when DEBUG is off.

Checked once at start-up (`ConfigConfig.ready`, so `gunicorn`, `qcluster` and every
management command alike) instead of as a system check: a check only speaks when someone runs
`check`, and a process started with the repository's public key would already sign (and accept)
django-q2's pickled tasks with it.
"""

from django.core.exceptions import ImproperlyConfigured

# Django's own bar for a key (`check --deploy`'s security.W009).
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_UNIQUE_CHARACTERS = 5


def _explicit_backends(settings) -> dict[str, str]:
    """The backends whose stand-in would pretend to work (a simulated gateway marks refunds
    paid while no money moves, a console backend "sends" the customer's SMS to a log), by the
    variable that names them. `config/settings.py` gives them no default with DEBUG off."""
    return {
        "PAYMENT_GATEWAY_BACKEND": settings.PAYMENT_GATEWAY.get("BACKEND", ""),
        "NOTIFY_SMS_BACKEND": settings.NOTIFICATIONS.get("SMS_BACKEND", ""),
        "EMAIL_BACKEND": settings.EMAIL_BACKEND,
    }


def production_refusals(settings) -> list[str]:
    """The sentences that stop a start with DEBUG off; none with DEBUG on."""
    if settings.DEBUG:
        return []
    refusals = []
    key = settings.SECRET_KEY or ""
    if key == getattr(settings, "INSECURE_SECRET_KEY", None):
        refusals.append(
            "SECRET_KEY is the repository's public default: set SECRET_KEY to a long random value "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))')."
        )
    elif (
        len(key) < SECRET_KEY_MIN_LENGTH or len(set(key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS or key.startswith("django-insecure-")
    ):
        refusals.append(
            f"SECRET_KEY is too weak: set it to a random value of at least {SECRET_KEY_MIN_LENGTH} "
            "characters (python -c 'import secrets; print(secrets.token_urlsafe(50))')."
        )
    missing = [name for name, value in _explicit_backends(settings).items() if not (value or "").strip()]
    if missing:
        refusals.append(
            "With DEBUG off the payment gateway, SMS and e-mail backends must be named explicitly, so a deploy never "
            f"falls back to a stand-in that pretends to pay or send: set {', '.join(missing)}."
        )
    return refusals


def refuse_unsafe_start(settings) -> None:
    """Raise ImproperlyConfigured with every reason at once, or return."""
    refusals = production_refusals(settings)
    if refusals:
        raise ImproperlyConfigured(
            "Refund Desk will not start with DEBUG off: " + " ".join(refusals) + " (DEBUG=1 only for a demo; see docs/deploy.md.)"
        )
