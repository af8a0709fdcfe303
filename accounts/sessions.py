"""The session engine (SESSION_ENGINE = "accounts.sessions"): Django's database sessions in
`StaffSession`, whose user, browser, address and times are kept in the session data and copied
to columns at each save, so the sessions page is one indexed query.

Idle timeout is Django's own: SESSION_COOKIE_AGE counts from the last save, and an active
session is saved at most once per SESSION_ACTIVITY_SECONDS (`touch`), which moves its expiry on.
"""

import secrets
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DBStore
from django.utils import timezone

HANDLE = "_staff_handle"
USER_AGENT = "_staff_ua"
IP = "_staff_ip"
SIGNED_IN = "_staff_since"
SEEN = "_staff_seen"


class SessionStore(DBStore):
    @classmethod
    def get_model_class(cls):
        from accounts.models import StaffSession

        return StaffSession

    def create_model_instance(self, data):
        obj = super().create_model_instance(data)
        try:
            obj.user_id = int(data.get(SESSION_KEY))
        except (TypeError, ValueError):
            obj.user_id = None
        obj.handle = data.get(HANDLE, "")
        obj.user_agent = data.get(USER_AGENT, "")[:300]
        obj.ip_address = data.get(IP) or None
        obj.signed_in_at = _from_ts(data.get(SIGNED_IN))
        obj.last_seen_at = _from_ts(data.get(SEEN))
        return obj


def _from_ts(value):
    return datetime.fromtimestamp(value, tz=UTC) if value else None


def _client(request) -> tuple[str, str]:
    meta = getattr(request, "META", {})
    return meta.get("HTTP_USER_AGENT", "")[:300], meta.get("REMOTE_ADDR", "")


def stamp_login(sender, request, user, **kwargs):
    """user_logged_in: a new signed-in session records its handle, browser, address and time."""
    session = getattr(request, "session", None)
    if session is None:
        return
    now = timezone.now().timestamp()
    session[HANDLE] = secrets.token_hex(8)
    session[USER_AGENT], session[IP] = _client(request)
    session[SIGNED_IN] = session[SEEN] = now


def touch(request) -> None:
    """Mark a signed-in session seen now (with its browser and address), at most once per
    SESSION_ACTIVITY_SECONDS.

    Only a session the request already loaded is looked at, so a request that never read it
    (/health/, the API) costs nothing; otherwise the cost is one UPDATE of one row by primary
    key once a minute per session (Django's SessionMiddleware writes it), and that write also
    moves the idle timeout on.
    """
    session = getattr(request, "session", None)
    if session is None or not session.accessed or SESSION_KEY not in session:
        return
    now = timezone.now().timestamp()
    if now - session.get(SEEN, 0) >= settings.SESSION_ACTIVITY_SECONDS:
        session[SEEN] = now
        session[USER_AGENT], session[IP] = _client(request)
        session.setdefault(HANDLE, secrets.token_hex(8))
