"""Background work for staff accounts (run by the django-q2 schedule of migration 0002)."""

from accounts.sessions import SessionStore


def prune_sessions() -> None:
    """Delete expired sessions (idle past SESSION_COOKIE_AGE): Django's own `clearsessions`."""
    SessionStore.clear_expired()
