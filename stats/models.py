"""Per-player statistics kept exact in the same transaction as the writes that change them."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from tracker.models import Source

# The counter of `PlayerGameStats` each achievement type adds to (the values of
# achievements.models.AchievementType); the other types have none.
TYPE_COUNTERS = {"progression": "progression_count", "win_condition": "win_condition_count"}


class PlayerGameStats(models.Model):
    """One player's totals in one game: the row every per-game board ranks."""

    # Every unlock updates this row and, its points being indexed, writes each of its
    # indexes: the foreign keys are indexed by the constraint and the board index below.
    player = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="game_stats", db_index=False
    )
    game = models.ForeignKey("tracker.Game", on_delete=models.CASCADE, related_name="player_stats", db_index=False)
    points = models.PositiveIntegerField(default=0)
    achievement_count = models.PositiveIntegerField(default=0)
    # Unlocked over all of the game's achievements (hidden included), in percent.
    completion = models.FloatField(default=0.0)
    # Of `achievement_count`, those typed progression and win condition: with the game's
    # own counts they decide the beaten award in the unlock statement, without a count(*)
    # (docs/awards.md). Kept by the unlock statement, a revocation and a manifest retype.
    progression_count = models.PositiveIntegerField(default=0, db_default=0)
    win_condition_count = models.PositiveIntegerField(default=0, db_default=0)
    # When the current points were reached: the tie-break on boards (earlier ranks first).
    points_reached_at = models.DateTimeField(null=True, blank=True)
    playtime_seconds = models.PositiveBigIntegerField(default=0)
    # Points weighted by rarity, refreshed in the background (docs/rarity.md).
    weighted_score = models.FloatField(default=0.0, db_default=0.0)
    first_activity = models.DateTimeField(null=True, blank=True)
    last_activity = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        verbose_name_plural = "player game stats"
        constraints = [
            models.UniqueConstraint(fields=["player", "game"], name="stats_once_per_player_game"),
        ]
        indexes = [
            models.Index(fields=["game", "-points", "points_reached_at"], name="stats_game_board"),
        ]

    def __str__(self) -> str:
        return f"{self.player_id} in {self.game_id}: {self.points} points"


class PlayerTotals(models.Model):
    """One player's totals over every game: the row the cross-game global board ranks."""

    player = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="totals"
    )
    points = models.PositiveIntegerField(default=0)
    achievement_count = models.PositiveIntegerField(default=0)
    points_reached_at = models.DateTimeField(null=True, blank=True)
    weighted_score = models.FloatField(default=0.0, db_default=0.0)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        verbose_name_plural = "player totals"
        indexes = [models.Index(fields=["-points", "points_reached_at"], name="totals_board")]

    def __str__(self) -> str:
        return f"{self.player_id}: {self.points} points"


class PlaySession(models.Model):
    """A stretch of play reported by a game server or client, idempotent by its id."""

    player = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="play_sessions")
    game = models.ForeignKey("tracker.Game", on_delete=models.CASCADE, related_name="play_sessions")
    session_id = models.CharField(max_length=64, help_text="Chosen by the reporter; a repeat is ignored.")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    duration_seconds = models.PositiveIntegerField()
    source = models.CharField(max_length=10, choices=Source.choices)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["player", "game", "session_id"], name="session_once"),
            models.CheckConstraint(condition=models.Q(ended_at__gte=models.F("started_at")), name="session_ordered"),
        ]
        indexes = [
            models.Index(fields=["game", "ended_at"], name="session_game_time"),
            models.Index(fields=["player", "ended_at"], name="session_player_time"),
        ]

    def __str__(self) -> str:
        return f"{self.player_id} played {self.game_id} for {self.duration_seconds}s"


class DailySnapshot(models.Model):
    """A player's totals at the end of a UTC day on which they were active: in one game,
    or over every game (`game` null). History and trend charts read only these."""

    player = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="snapshots")
    game = models.ForeignKey("tracker.Game", null=True, blank=True, on_delete=models.CASCADE, related_name="snapshots")
    date = models.DateField()
    points = models.PositiveIntegerField()
    achievement_count = models.PositiveIntegerField()
    playtime_seconds = models.PositiveBigIntegerField()
    # What that day added.
    points_gained = models.IntegerField(default=0)
    unlocks = models.IntegerField(default=0)
    playtime_gained = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["player", "game", "date"], condition=models.Q(game__isnull=False), name="snapshot_per_game"
            ),
            models.UniqueConstraint(
                fields=["player", "date"], condition=models.Q(game__isnull=True), name="snapshot_overall"
            ),
        ]
        indexes = [models.Index(fields=["player", "game", "date"], name="snapshot_range")]

    def __str__(self) -> str:
        return f"{self.player_id} {self.game_id or 'all'} {self.date}"
