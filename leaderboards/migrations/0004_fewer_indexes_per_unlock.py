import django.db.models.deletion
from django.db import migrations, models

from infra.migrations import unindex_foreign_keys


class Migration(migrations.Migration):
    dependencies = [
        ("leaderboards", "0003_roles"),
    ]

    operations = [
        unindex_foreign_keys(
            "seasonstanding",
            "leaderboards_seasonstanding",
            {
                "season": (
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="standings",
                        to="leaderboards.season",
                    ),
                    ["leaderboards_seasonstanding_season_id_dc37f50f"],
                ),
            },
        ),
    ]
