from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("stats", "0002_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="playsession",
            name="source",
            field=models.CharField(
                choices=[
                    ("server", "Game server (API key)"),
                    ("client", "Game client (player token)"),
                    ("admin", "Admin"),
                    ("demo", "Demo data"),
                ],
                max_length=10,
            ),
        ),
    ]
