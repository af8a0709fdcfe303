from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrdersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "orders"
    verbose_name = _("Orders")

    def ready(self):
        from config.audit.log import register
        from orders.models import Channel

        # Audited: who created, renamed, switched off or re-keyed a channel (the key's hash
        # is never copied into the log; its prefix shows which key). A model of its own for
        # keys is one more line here: `register(ChannelKey, mask=["key_hash"])`.
        register(Channel, mask=["key_hash"])
