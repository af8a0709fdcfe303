from django.db import migrations


class Migration(migrations.Migration):
    """An export keeps its parsed filter (`filters`), not the changelist's querystring."""

    dependencies = [("refunds", "0011_schedule_export_sweeper")]

    operations = [migrations.RenameField(model_name="export", old_name="params", new_name="filters")]
