from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("simulated_gateway", "0001_initial"),
        # refunds lets go of the models first.
        ("refunds", "0009_payout_outcome_unknown_and_reconciliation"),
    ]

    operations = [
        migrations.AlterModelTable(name="gatewayledgerentry", table=None),
        migrations.AlterModelTable(name="simulatedgatewaycontrol", table=None),
    ]
