import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from infra.migrations import unindex_foreign_keys


class Migration(migrations.Migration):
    dependencies = [
        ("stats", "0003_playsession_source_choices"),
        ("tracker", "0006_gamemember"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        unindex_foreign_keys(
            "playergamestats",
            "stats_playergamestats",
            {
                "game": (
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="player_stats",
                        to="tracker.game",
                    ),
                    ["stats_playergamestats_game_id_e1407287"],
                ),
                "player": (
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="game_stats",
                        to=settings.AUTH_USER_MODEL,
                    ),
                    ["stats_playergamestats_player_id_14342bf4"],
                ),
            },
        ),
    ]
