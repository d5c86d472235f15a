import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from infra.migrations import unindex_foreign_keys


class Migration(migrations.Migration):
    dependencies = [
        ("achievements", "0002_initial"),
        ("tracker", "0006_gamemember"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        unindex_foreign_keys(
            "unlock",
            "achievements_unlock",
            {
                "achievement": (
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="unlocks",
                        to="achievements.achievement",
                    ),
                    ["achievements_unlock_achievement_id_b8ee15e9"],
                ),
                "game": (
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="unlocks",
                        to="tracker.game",
                    ),
                    ["achievements_unlock_game_id_476d34fc"],
                ),
                "game_key": (
                    models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        to="tracker.gamekey",
                    ),
                    ["achievements_unlock_game_key_id_00f2a67c_like"],
                ),
                "player": (
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="unlocks",
                        to=settings.AUTH_USER_MODEL,
                    ),
                    ["achievements_unlock_player_id_c88a21ca"],
                ),
            },
        ),
        # The key's plain index stays, under the name the model now gives it.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(
                    model_name="unlock",
                    index=models.Index(fields=["game_key"], name="unlock_game_key"),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql='ALTER INDEX "achievements_unlock_game_key_id_00f2a67c" RENAME TO "unlock_game_key"',
                    reverse_sql='ALTER INDEX "unlock_game_key" RENAME TO "achievements_unlock_game_key_id_00f2a67c"',
                ),
            ],
        ),
    ]
