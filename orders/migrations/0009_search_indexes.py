"""Indexes for the staff search: a customer by id, e-mail, last four digits of the phone or
part of the name, and an outbound parcel by its tracking number.

The name's trigram index (pg_trgm, GIN) exists on PostgreSQL only: the extension and the
index are skipped on SQLite, which reads the table instead (slower, the same answers).
"""

import django.contrib.postgres.indexes
import django.db.models.functions.text
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models


class AddIndexOnPostgres(migrations.AddIndex):
    """AddIndex whose index exists on PostgreSQL only; the model state is the same everywhere."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0008_shipment_tracking_unique_per_channel"),
    ]

    operations = [
        TrigramExtension(),  # a no-op on other databases
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(fields=["external_id"], name="customer_external_id_idx"),
        ),
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(django.db.models.functions.text.Upper("email"), name="customer_email_upper_idx"),
        ),
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(django.db.models.functions.text.Right("phone", 4), name="customer_phone_last4_idx"),
        ),
        AddIndexOnPostgres(
            model_name="customer",
            index=django.contrib.postgres.indexes.GinIndex(
                django.contrib.postgres.indexes.OpClass(django.db.models.functions.text.Upper("name"), name="gin_trgm_ops"),
                name="customer_name_trgm_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="shipment",
            index=models.Index(fields=["tracking_number"], name="shipment_tracking_number_idx"),
        ),
    ]
