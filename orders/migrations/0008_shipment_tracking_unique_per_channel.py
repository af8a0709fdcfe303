"""A tracking number is unique per channel, not across channels, so one channel can neither
learn of nor claim another's: shipments carry their order's channel."""

import django.db.models.deletion
from django.db import migrations, models


def fill_channel(apps, schema_editor):
    Shipment = apps.get_model("orders", "Shipment")
    Order = apps.get_model("orders", "Order")
    Shipment.objects.update(
        channel_id=models.Subquery(Order.objects.filter(pk=models.OuterRef("order_id")).values("channel_id")[:1])
    )


class Migration(migrations.Migration):
    dependencies = [("orders", "0007_channel_keys")]

    operations = [
        migrations.AddField(
            model_name="shipment",
            name="channel",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="orders.channel",
                verbose_name="channel",
            ),
        ),
        migrations.RunPython(fill_channel, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="shipment",
            name="channel",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="+", to="orders.channel", verbose_name="channel"
            ),
        ),
        migrations.RemoveConstraint(model_name="shipment", name="shipment_tracking_unique"),
        migrations.AddConstraint(
            model_name="shipment",
            constraint=models.UniqueConstraint(
                fields=("channel", "carrier", "tracking_number"), name="shipment_tracking_unique_per_channel"
            ),
        ),
        migrations.AddIndex(
            model_name="shipment",
            index=models.Index(fields=["carrier", "tracking_number"], name="orders_ship_carrier_302c59_idx"),
        ),
    ]
