from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


def _recompute_later(sender, *, customer_id, **kwargs):
    from risk import services  # the app registry is ready only after import time

    services.customer_changed(customer_id=customer_id)


class RiskConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "risk"
    verbose_name = _("Risk")

    def ready(self):
        from config.audit.log import register
        from orders.services_erasure import register_part
        from orders.signals import customer_changed
        from risk.erasure import PART
        from risk.models import RiskSettings

        register(RiskSettings, exclude=["updated_at"])

        customer_changed.connect(_recompute_later, dispatch_uid="risk.recompute_customer")
        register_part(PART)  # what an erasure replaces in risk
