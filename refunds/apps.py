from django.apps import AppConfig
from django.db.models.signals import post_delete, post_migrate
from django.utils.translation import gettext_lazy as _


class RefundsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "refunds"
    verbose_name = _("Refunds")

    def ready(self):
        from config.audit.log import register
        from orders.services_erasure import register_part
        from refunds.erasure import PART
        from refunds.exports import delete_file
        from refunds.models import PayoutSettings, RefundPolicy
        from refunds.roles import sync_roles

        register_part(PART)  # what an erasure replaces in refunds
        # The merchant's rules and finance's limits: every change in the audit log, old → new.
        register(RefundPolicy, exclude=["updated_at"])
        register(PayoutSettings, exclude=["updated_at"])

        # Setup, not business logic: keep the role groups in step with the matrix after
        # every migrate (permissions themselves are created by Django's own post_migrate).
        post_migrate.connect(sync_roles, dispatch_uid="refunds.sync_roles")
        # An export's file goes with its row, however the row goes (its age, its user deleted).
        post_delete.connect(delete_file, sender="refunds.Export", dispatch_uid="refunds.export_file")
