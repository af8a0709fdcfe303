from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuditConfig(AppConfig):
    name = "config.audit"
    label = "audit"
    verbose_name = _("Audit")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.contrib.auth import get_user_model

        from config.audit.log import register

        # Role membership is the user's groups; is_staff / is_superuser open the admin and
        # every permission. The password hash is never copied into the log, only "changed".
        register(
            get_user_model(),
            include=["username", "email", "is_active", "is_staff", "is_superuser", "password"],
            mask=["password"],
            m2m=["groups", "user_permissions"],
        )
