from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConfigConfig(AppConfig):
    """The project's own app: settings, URLs, and the background-work kit every domain app
    shares (the after-commit enqueue, the sweepers' error handling and the rows they park)."""

    name = "config"
    verbose_name = _("Background work")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.conf import settings

        from config.deploy import refuse_unsafe_start

        refuse_unsafe_start(settings)
