from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tracker", "0002_outboxevent"),
    ]

    operations = [
        migrations.AddField(
            model_name="player",
            name="session_generation",
            field=models.PositiveIntegerField(db_default=0, default=0, editable=False),
        ),
    ]
