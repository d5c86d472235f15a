"""Developer analytics: daily aggregates per game, and the review queue of suspicious unlocks.

The aggregates are written only by the aggregation job (analytics/aggregation.py), one UTC
day of one game at a time, and rewritten whole when a day is aggregated again, so a re-run
gives the same rows. Pages, the API and CSV exports read these tables and never scan all
unlocks (docs/analytics.md has each metric's definition).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ActivityDay(models.Model):
    """A player active in a game on a UTC day: a play session overlapping the day, or an
    unlock on it. The facts that active-player counts, new/returning and retention read."""

    game = models.ForeignKey("tracker.Game", on_delete=models.CASCADE, related_name="+")
    player = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    date = models.DateField()
    unlocks = models.PositiveIntegerField(default=0)
    playtime_seconds = models.PositiveIntegerField(default=0)  # the part of sessions on this day
    first_day = models.BooleanField(default=False)  # the player's first active day in the game

    class Meta:
        constraints = [models.UniqueConstraint(fields=["game", "player", "date"], name="activity_once_per_day")]
        indexes = [models.Index(fields=["game", "date"], name="activity_game_date")]

    def __str__(self) -> str:
        return f"{self.player_id} in {self.game_id} on {self.date}"


class GameDay(models.Model):
    """One game's numbers for one UTC day."""

    game = models.ForeignKey("tracker.Game", on_delete=models.CASCADE, related_name="+")
    date = models.DateField()
    active_players = models.PositiveIntegerField(default=0)  # DAU
    new_players = models.PositiveIntegerField(default=0)
    returning_players = models.PositiveIntegerField(default=0)
    weekly_active_players = models.PositiveIntegerField(default=0)  # WAU: the 7 days ending on `date`
    monthly_active_players = models.PositiveIntegerField(default=0)  # MAU: the 30 days ending on `date`
    players_to_date = models.PositiveIntegerField(default=0)  # everyone ever active, up to `date`
    unlocks = models.PositiveIntegerField(default=0)
    playtime_seconds = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["game", "date"], name="gameday_once")]

    def __str__(self) -> str:
        return f"{self.game_id} on {self.date}"


class AchievementDay(models.Model):
    """One achievement's unlocks on a UTC day, and how many held it at the day's end: with
    the game's players to date, its global unlock percentage as it stood that day."""

    game = models.ForeignKey("tracker.Game", on_delete=models.CASCADE, related_name="+")
    achievement = models.ForeignKey("achievements.Achievement", on_delete=models.CASCADE, related_name="+")
    date = models.DateField()
    unlocks = models.PositiveIntegerField(default=0)
    holders = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["achievement", "date"], name="achievementday_once")]
        indexes = [models.Index(fields=["game", "date"], name="achievementday_game_date")]

    def __str__(self) -> str:
        return f"{self.achievement_id} on {self.date}"


class Cohort(models.Model):
    """The players whose first active day in a game was `date`, and how many of them were
    active again on day 1, 7 and 30 after it (None until that day has been aggregated)."""

    game = models.ForeignKey("tracker.Game", on_delete=models.CASCADE, related_name="+")
    date = models.DateField()
    size = models.PositiveIntegerField(default=0)
    day1 = models.PositiveIntegerField(null=True, blank=True)
    day7 = models.PositiveIntegerField(null=True, blank=True)
    day30 = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["game", "date"], name="cohort_once")]

    def __str__(self) -> str:
        return f"cohort of {self.date} in {self.game_id}"


class Distribution(models.Model):
    """A game's distributions as of the last aggregated day, rewritten whole each time:
    kind "completion", "playtime", "funnel", or "time_to_unlock" for one achievement.
    `data` is documented in analytics/aggregation.py."""

    class Kind(models.TextChoices):
        COMPLETION = "completion"
        PLAYTIME = "playtime"
        FUNNEL = "funnel"
        TIME_TO_UNLOCK = "time_to_unlock"

    game = models.ForeignKey("tracker.Game", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    achievement = models.ForeignKey(
        "achievements.Achievement", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    as_of = models.DateField()
    data = models.JSONField(default=dict)

    class Meta:
        # One row per game and kind, and per achievement for the per-achievement kind.
        constraints = [
            models.UniqueConstraint(
                fields=["game", "kind", "achievement"],
                condition=models.Q(achievement__isnull=False),
                name="distribution_once_per_achievement",
            ),
            models.UniqueConstraint(
                fields=["game", "kind"], condition=models.Q(achievement__isnull=True), name="distribution_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of {self.game_id} as of {self.as_of}"


class AggregationCursor(models.Model):
    """How far the aggregation job got for a game: every day up to `last_day` is complete.
    The catch-up job aggregates from the day after it to yesterday, then today so far."""

    game = models.OneToOneField("tracker.Game", on_delete=models.CASCADE, primary_key=True, related_name="+")
    last_day = models.DateField(null=True, blank=True)
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.game_id} aggregated to {self.last_day}"


class UnlockFlag(models.Model):
    """An unlock the anomaly rules found suspicious (analytics/review.py), waiting for a
    community manager. Kept after a revocation (the unlock row is then gone), with what it
    was, so the queue remains a record."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DISMISSED = "dismissed", "Dismissed"
        REVOKED = "revoked", "Revoked"

    unlock = models.OneToOneField(
        "achievements.Unlock", null=True, blank=True, on_delete=models.SET_NULL, related_name="flag"
    )
    player = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    game = models.ForeignKey("tracker.Game", on_delete=models.CASCADE, related_name="+")
    achievement = models.ForeignKey("achievements.Achievement", on_delete=models.CASCADE, related_name="+")
    unlocked_at = models.DateTimeField()
    score = models.FloatField()  # the sum of the rules' weights that fired; higher is more suspicious
    evidence = models.JSONField(default=list)  # [{"rule": ..., "weight": ..., "detail": ..., ...}]
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    flagged_at = models.DateTimeField(auto_now_add=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["status", "-score"], name="flag_queue")]
        permissions = [("review_unlockflag", "Can dismiss or revoke flagged unlocks")]

    def __str__(self) -> str:
        return f"Flag #{self.pk}: {self.player} / {self.achievement.api_name} (score {self.score:g})"


class ScoringCursor(models.Model):
    """The last unlock id the anomaly scoring has looked at (one row): the job scores every
    unlock after it, so it catches up after downtime and never scores one twice."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_unlock_id = models.BigIntegerField(default=0)
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"scored to unlock {self.last_unlock_id}"
