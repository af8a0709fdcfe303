# The simulated gateway's models moved here from `refunds`: this migration only takes them
# over in Django's state (their tables stay as they are); 0002 renames the tables.
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [("refunds", "0008_exports")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="GatewayLedgerEntry",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("idempotency_key", models.CharField(max_length=64, unique=True, verbose_name="idempotency key")),
                        ("payment_reference", models.CharField(max_length=100, verbose_name="payment reference")),
                        ("amount", models.DecimalField(decimal_places=2, max_digits=14, verbose_name="amount")),
                        ("currency", models.CharField(max_length=3, verbose_name="currency")),
                        ("reference", models.CharField(max_length=64, unique=True, verbose_name="reference")),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now, verbose_name="created at")),
                    ],
                    options={
                        "verbose_name": "simulated gateway ledger entry",
                        "verbose_name_plural": "simulated gateway ledger",
                        "db_table": "refunds_gatewayledgerentry",
                    },
                ),
                migrations.CreateModel(
                    name="SimulatedGatewayControl",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("mode", models.CharField(default="ok", max_length=30, verbose_name="mode")),
                        ("remaining", models.PositiveIntegerField(default=0, verbose_name="remaining")),
                        ("delay_ms", models.PositiveIntegerField(default=0, verbose_name="delay ms")),
                    ],
                    options={
                        "verbose_name": "simulated gateway control",
                        "verbose_name_plural": "simulated gateway control",
                        "db_table": "refunds_simulatedgatewaycontrol",
                    },
                ),
            ],
            database_operations=[],
        )
    ]
