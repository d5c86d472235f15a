"""Achievements, the unlocks that players earn, and progress toward incremental ones."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from tracker.models import Source


class AchievementType(models.TextChoices):
    """What an achievement means for finishing the game, as RetroAchievements types them;
    the beaten award is decided by them (docs/awards.md). Most have none."""

    PROGRESSION = "progression", "Progression"
    WIN_CONDITION = "win_condition", "Win condition"
    MISSABLE = "missable", "Missable"


class Achievement(models.Model):
    MAX_POINTS = 1000

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    game = models.ForeignKey("tracker.Game", on_delete=models.CASCADE, related_name="achievements")
    api_name = models.CharField(max_length=64)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True, default="")
    icon = models.URLField(max_length=500, blank=True, default="", help_text="Image URL, from the manifest.")
    points = models.PositiveIntegerField()
    hidden = models.BooleanField(default=False)
    client_unlockable = models.BooleanField(default=False)
    # Set for incremental achievements: the progress value at which it unlocks.
    progress_target = models.PositiveIntegerField(null=True, blank=True)
    # Position in the game's set, from the manifest; the progression funnel follows it.
    position = models.PositiveIntegerField(default=0)
    type = models.CharField(max_length=16, choices=AchievementType.choices, blank=True, default="", db_default="")
    created = models.DateTimeField(auto_now_add=True)
    # Global unlock rate, refreshed in the background (achievements.tasks.refresh_rarity):
    # players who unlocked it over players with any activity in the game.
    unlock_count = models.PositiveIntegerField(default=0, editable=False)
    unlock_percentage = models.FloatField(default=0.0, editable=False)
    # Multiplier of points in the rarity-weighted score (docs/rarity.md).
    score_weight = models.FloatField(default=1.0, editable=False)

    class Meta:
        ordering = ["game", "position", "name"]
        constraints = [
            models.UniqueConstraint(fields=["game", "api_name"], name="achievement_api_name_unique"),
            models.CheckConstraint(condition=models.Q(points__lte=1000), name="achievement_points_at_most_1000"),
            models.CheckConstraint(
                condition=models.Q(progress_target__isnull=True) | models.Q(progress_target__gt=0),
                name="achievement_progress_target_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def rarity(self) -> str:
        return rarity_tier(self.unlock_percentage, self.unlock_count)


class Rarity(models.TextChoices):
    COMMON = "common", "Common"
    UNCOMMON = "uncommon", "Uncommon"
    RARE = "rare", "Rare"
    EPIC = "epic", "Epic"
    LEGENDARY = "legendary", "Legendary"


# Lower bounds of the global unlock percentage for each tier, rarest last (docs/rarity.md).
RARITY_THRESHOLDS: tuple[tuple[float, Rarity], ...] = (
    (50.0, Rarity.COMMON),
    (20.0, Rarity.UNCOMMON),
    (5.0, Rarity.RARE),
    (1.0, Rarity.EPIC),
)


def rare_below() -> float:
    """The global unlock percentage under which an achievement is rare or rarer: the lower
    bound of the tier just above `Rarity.RARE`. What "rare" means on every page."""
    bounds = [lower_bound for lower_bound, _ in RARITY_THRESHOLDS]
    return bounds[[tier for _, tier in RARITY_THRESHOLDS].index(Rarity.RARE) - 1]


def rarity_tier(percentage: float, unlock_count: int = 1) -> str:
    """The tier of an achievement unlocked by `percentage` percent of the game's players.

    An achievement nobody has unlocked yet is legendary by definition.
    """
    if unlock_count == 0:
        return Rarity.LEGENDARY.value
    for lower_bound, tier in RARITY_THRESHOLDS:
        if percentage >= lower_bound:
            return tier.value
    return Rarity.LEGENDARY.value


class Unlock(models.Model):
    """One player's unlock of one achievement; at most one per pair, ever.

    `unlocked_at` is the server's clock when the unlock was recorded and is what every
    board, season window and trend uses; `claimed_at` is what the reporter said.
    """

    # Every unlock writes each index of this table: the foreign keys are indexed by the
    # composite indexes below (each leads with one), not by indexes of their own.
    player = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="unlocks", db_index=False
    )
    achievement = models.ForeignKey(Achievement, on_delete=models.CASCADE, related_name="unlocks", db_index=False)
    game = models.ForeignKey("tracker.Game", on_delete=models.CASCADE, related_name="unlocks", db_index=False)
    unlocked_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices)
    game_key = models.ForeignKey("tracker.GameKey", null=True, blank=True, on_delete=models.SET_NULL, db_index=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["player", "achievement"], name="unlock_once_per_player"),
        ]
        indexes = [
            models.Index(fields=["player", "-unlocked_at"], name="unlock_player_recent"),
            models.Index(fields=["game", "unlocked_at"], name="unlock_game_time"),
            models.Index(fields=["achievement", "unlocked_at"], name="unlock_achievement_time"),
            # A plain index for the key's SET NULL on deletion, without the pattern-ops twin
            # Django adds to an indexed text foreign key.
            models.Index(fields=["game_key"], name="unlock_game_key"),
        ]

    def __str__(self) -> str:
        return f"{self.player_id} unlocked {self.achievement_id}"


class Award(models.Model):
    """A game a player has beaten or mastered (docs/awards.md), from the moment its
    condition first held (`awarded_at`). Beaten is withdrawn when it no longer holds;
    mastered outlives a set that grows, and is withdrawn by a revocation in the game."""

    class Kind(models.TextChoices):
        BEATEN = "beaten", "Beaten"
        MASTERED = "mastered", "Mastered"

    player = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="awards", db_index=False
    )
    game = models.ForeignKey("tracker.Game", on_delete=models.CASCADE, related_name="awards", db_index=False)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    awarded_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["player", "game", "kind"], name="award_once_per_player_game")]
        indexes = [
            models.Index(fields=["player", "-awarded_at"], name="award_player_recent"),
            models.Index(fields=["game", "kind", "awarded_at"], name="award_game_first"),
        ]

    def __str__(self) -> str:
        return f"{self.player_id} {self.kind} {self.game_id}"


class Progress(models.Model):
    """Progress toward an incremental achievement. It only ever goes up."""

    player = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="progress")
    achievement = models.ForeignKey(Achievement, on_delete=models.CASCADE, related_name="progress")
    value = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "progress"
        constraints = [
            models.UniqueConstraint(fields=["player", "achievement"], name="progress_once_per_player"),
        ]

    def __str__(self) -> str:
        return f"{self.player_id} at {self.value} on {self.achievement_id}"
