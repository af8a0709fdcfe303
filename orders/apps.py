from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrdersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "orders"
    verbose_name = _("Orders")

    def ready(self):
        from config.audit.log import register
        from orders.models import Channel, ChannelKey

        # Audited: who created, renamed or switched off a channel, and who issued, expired or
        # revoked its keys (a key's hash is never copied into the log; its prefix shows which
        # key; the once-a-minute "last used" mark is not a change anyone made).
        register(Channel)
        register(ChannelKey, mask=["key_hash"], exclude=["last_used_at"])
