from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "notifications"
    verbose_name = _("Notifications")

    def ready(self):
        from notifications.erasure import PART
        from orders.services_erasure import register_part

        register_part(PART)  # what an erasure replaces in the outbox
