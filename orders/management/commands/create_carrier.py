"""Create a carrier and print its webhook signing secret once, alone on the last line."""

import secrets

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from orders.models import Carrier


class Command(BaseCommand):
    help = "Create a carrier and print the HMAC secret it signs tracking events with."

    def add_arguments(self, parser):
        parser.add_argument("code")
        parser.add_argument("--name", default="")
        parser.add_argument("--rotate", action="store_true", help="Give an existing carrier a new secret.")

    def handle(self, *args, code, name, rotate, **options):
        secret = secrets.token_hex(32)
        with transaction.atomic():
            carrier = Carrier.objects.select_for_update().filter(code=code).first()
            if carrier is not None and not rotate:
                raise CommandError(f"Carrier {code!r} exists; pass --rotate to give it a new secret.")
            if carrier is None:
                carrier = Carrier(code=code, name=name or code)
            carrier.secret = secret
            carrier.save()
        self.stdout.write(f"Carrier {carrier.code} ready. Sign tracking events with this secret, shown only now:")
        self.stdout.write(secret)
