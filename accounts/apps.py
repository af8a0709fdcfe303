from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_in
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    """Staff accounts: sign-in lockout (django-axes), two-factor authentication (django-otp)
    and the sessions a staff member can see and end. An interface over the apps: nothing
    below imports it."""

    name = "accounts"
    verbose_name = _("Staff accounts")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from accounts.sessions import stamp_login

        # Bookkeeping, not business logic: a fresh session records where it was opened.
        user_logged_in.connect(stamp_login, dispatch_uid="accounts.stamp_login")
