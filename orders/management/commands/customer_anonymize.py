"""`manage.py customer_anonymize 17 42` or `--channel shop --external-id C-1001`: erase the
personal data of customers (orders.services_erasure), as the admin action does."""

from django.core.management.base import BaseCommand, CommandError

from config.actors import SYSTEM
from config.errors import DomainError
from orders.models import Customer
from orders.services_erasure import customer_anonymize


class Command(BaseCommand):
    help = "Replace customers' personal data everywhere it is stored; amounts stay. Can't be undone."

    def add_arguments(self, parser):
        parser.add_argument("customer_ids", nargs="*", help="customer ids (the admin's)")
        parser.add_argument("--channel", help="with --external-id: the channel's name")
        parser.add_argument("--external-id", help="with --channel: the customer's id at that channel")

    def handle(self, *args, customer_ids, channel, external_id, **options):
        ids = self._ids(customer_ids, channel, external_id)
        for pk in ids:
            try:
                customer_anonymize(customer_id=pk, actor=SYSTEM)
            except DomainError as exc:
                raise CommandError(exc.message) from None
            self.stdout.write(f"customer {pk}: personal data erased")

    def _ids(self, customer_ids, channel, external_id) -> list[int]:
        if bool(channel) != bool(external_id):
            raise CommandError("Give --channel and --external-id together.")
        if channel:
            if customer_ids:
                raise CommandError("Give customer ids or --channel with --external-id, not both.")
            pk = Customer.objects.filter(channel__name=channel, external_id=external_id).values_list("pk", flat=True).first()
            if pk is None:
                raise CommandError(f"Channel {channel!r} has no customer {external_id!r}.")
            return [pk]
        if not customer_ids:
            raise CommandError("Name the customers: their ids, or --channel with --external-id.")
        bad = [v for v in customer_ids if not v.isdigit()]
        if bad:
            raise CommandError(f"Customer ids are whole numbers; {', '.join(bad)} is not.")
        ids = [int(v) for v in customer_ids]
        missing = sorted(set(ids) - set(Customer.objects.filter(pk__in=ids).values_list("pk", flat=True)))
        if missing:
            raise CommandError(f"There is no customer {', '.join(map(str, missing))}; nothing was erased.")
        return ids
