"""A channel's keys move to their own table (two slots, an expiry, the last use); each
channel's current key becomes its key in slot 1, hash and prefix as they were."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


def copy_keys(apps, schema_editor):
    Channel = apps.get_model("orders", "Channel")
    ChannelKey = apps.get_model("orders", "ChannelKey")
    ChannelKey.objects.bulk_create(
        ChannelKey(channel_id=c.pk, slot=1, key_hash=c.key_hash, key_prefix=c.key_prefix, created_at=c.created_at)
        for c in Channel.objects.exclude(key_hash__isnull=True).exclude(key_hash="")
    )


def copy_back(apps, schema_editor):
    Channel = apps.get_model("orders", "Channel")
    ChannelKey = apps.get_model("orders", "ChannelKey")
    for key in ChannelKey.objects.order_by("channel_id", "-created_at"):
        Channel.objects.filter(pk=key.channel_id, key_hash__isnull=True).update(key_hash=key.key_hash, key_prefix=key.key_prefix)


class Migration(migrations.Migration):
    dependencies = [("orders", "0006_schedule_retention_sweeper")]

    operations = [
        migrations.CreateModel(
            name="ChannelKey",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("slot", models.PositiveSmallIntegerField(editable=False, verbose_name="slot")),
                ("key_hash", models.CharField(editable=False, max_length=64, unique=True, verbose_name="key hash")),
                ("key_prefix", models.CharField(editable=False, max_length=12, verbose_name="key prefix")),
                (
                    "created_at",
                    models.DateTimeField(default=django.utils.timezone.now, editable=False, verbose_name="created at"),
                ),
                ("expires_at", models.DateTimeField(blank=True, null=True, verbose_name="expires at")),
                ("last_used_at", models.DateTimeField(blank=True, editable=False, null=True, verbose_name="last used at")),
                (
                    "channel",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="keys",
                        to="orders.channel",
                        verbose_name="channel",
                    ),
                ),
            ],
            options={
                "verbose_name": "channel key",
                "verbose_name_plural": "channel keys",
                "constraints": [
                    models.UniqueConstraint(fields=("channel", "slot"), name="channel_key_two_slots_per_channel"),
                    models.CheckConstraint(condition=models.Q(("slot__in", (1, 2))), name="channel_key_slot_is_1_or_2"),
                ],
            },
        ),
        migrations.RunPython(copy_keys, copy_back),
        migrations.RemoveField(model_name="channel", name="key_hash"),
        migrations.RemoveField(model_name="channel", name="key_prefix"),
    ]
