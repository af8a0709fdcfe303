from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SimulatedGatewayConfig(AppConfig):
    name = "refunds.gateways.simulated"
    label = "simulated_gateway"
    verbose_name = _("Simulated payment gateway")
    default_auto_field = "django.db.models.BigAutoField"
