from django.conf import settings
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models
from django.utils.translation import gettext_lazy as _


class StaffSession(AbstractBaseSession):
    """Django's database session with who, from where and when, so a staff member can see
    their sessions and end one (Django's documented way to extend the session table).

    The extra columns are copied from the session's own data at every save
    (`accounts.sessions.SessionStore`): nothing else writes them.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+", verbose_name=_("user")
    )
    # Not the session key (that is the credential): what the sessions page names a session by.
    handle = models.CharField(_("handle"), max_length=32, blank=True, db_index=True)
    user_agent = models.CharField(_("browser"), max_length=300, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    signed_in_at = models.DateTimeField(_("signed in at"), null=True, blank=True)
    last_seen_at = models.DateTimeField(_("last seen at"), null=True, blank=True)

    class Meta(AbstractBaseSession.Meta):
        verbose_name = _("staff session")
        verbose_name_plural = _("staff sessions")

    @classmethod
    def get_session_store_class(cls):
        from accounts.sessions import SessionStore

        return SessionStore

    def __str__(self):
        return f"session {self.handle or '-'}"
