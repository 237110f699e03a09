from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("generator", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="task",
            name="error_reason",
            field=models.JSONField(blank=True, editable=False, null=True, verbose_name="error reason"),
        ),
    ]
