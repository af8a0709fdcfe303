"""Create a sales channel and print its API key once, alone on the last line."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from config.actors import SYSTEM
from config.audit.log import acting
from config.errors import DomainError
from orders import services
from orders.models import Channel


class Command(BaseCommand):
    help = "Create a channel and print its API key (shown once; only a hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--kind", required=True, choices=Channel.Kind.values)
        parser.add_argument(
            "--rotate",
            action="store_true",
            help="Give an existing channel a new key; its other key expires CHANNEL_KEY_ROTATION_DAYS later.",
        )

    def handle(self, *args, name, kind, rotate, **options):
        with transaction.atomic():
            channel = Channel.objects.select_for_update().filter(name=name).first()
            if channel is not None and not rotate:
                raise CommandError(f"Channel {name!r} exists; pass --rotate to give it a new key.")
            if channel is None:
                channel = Channel(name=name, kind=kind)
            channel.kind = kind
            # The audit log shows the new key's prefix (never its hash) and where it came from.
            with acting(SYSTEM, via="manage.py create_channel" + (" --rotate" if rotate else "")):
                channel.save()
                try:
                    _, key = services.channel_key_issue(channel_id=channel.pk)
                except DomainError as exc:
                    raise CommandError(exc.message) from None
        self.stdout.write(f"Channel {channel.name} ({channel.kind}) ready. Its key, shown only now:")
        self.stdout.write(key)
