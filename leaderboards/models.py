"""Seasons and their standings, archived results, and the moderation log."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone

from tracker.regions import Region


def season_board_region(season_region: str, region: str) -> str:
    """The region key of the board a season of `season_region` ("": every region) has for
    `region`. A regional season has one board, its region's, kept as the season's
    all-regions board (""); any other region's board of it is empty."""
    return "" if region == season_region else region


def season_has_region_boards(season_region: str) -> bool:
    """Whether a season of `season_region` has a board per region besides its all-regions
    board: an all-regions season does; a regional season has just the one."""
    return not season_region


def season_entry_region(season_region: str, player_region: str) -> str:
    """The region whose board of a season a player of `player_region` is on besides its
    all-regions board: none ("") for a regional season, whose one board is that board."""
    return player_region if season_has_region_boards(season_region) else ""


class SeasonQuerySet(models.QuerySet):
    def due_to_close(self, now: datetime) -> SeasonQuerySet:
        return self.filter(ends_at__lte=now, closed_at__isnull=True)


class Season(models.Model):
    """A competitive window on one game, run by community managers.

    Only unlocks recorded inside [starts_at, ends_at) count; with `region` set, only that
    region's players take part; with `achievements` chosen, only those count.
    """

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        RUNNING = "running", "Running"
        CLOSING = "closing", "Ended, closing"
        CLOSED = "closed", "Closed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    game = models.ForeignKey("tracker.Game", on_delete=models.CASCADE, related_name="seasons")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True, default="")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    region = models.CharField(
        max_length=8, choices=Region.choices, blank=True, default="", help_text="Blank: every region takes part."
    )
    achievements = models.ManyToManyField(
        "achievements.Achievement",
        blank=True,
        related_name="seasons",
        help_text="Blank: every achievement of the game counts.",
    )
    closed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)

    objects = SeasonQuerySet.as_manager()

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")), name="season_ends_after_start"
            )
        ]
        indexes = [models.Index(fields=["game", "starts_at", "ends_at"], name="season_window")]

    def __str__(self) -> str:
        return self.name

    def status_at(self, now: datetime) -> str:
        if self.closed_at is not None:
            return self.Status.CLOSED
        if now < self.starts_at:
            return self.Status.SCHEDULED
        if now < self.ends_at:
            return self.Status.RUNNING
        return self.Status.CLOSING

    @property
    def status(self) -> str:
        return self.status_at(timezone.now())

    def board_region(self, region: str) -> str:
        """The region key of this season's board for `region` (`season_board_region`)."""
        return season_board_region(self.region, region)


class SeasonStanding(models.Model):
    """A player's live points in a season, kept exact in the unlock transaction."""

    # Indexed by the constraint below, which every unlock in a season writes anyway.
    season = models.ForeignKey(Season, on_delete=models.CASCADE, related_name="standings", db_index=False)
    player = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="season_standings")
    points = models.IntegerField(default=0)
    achievement_count = models.IntegerField(default=0)
    points_reached_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["season", "player"], name="standing_once_per_season")]
        indexes = [models.Index(fields=["season", "-points", "points_reached_at"], name="standing_board")]

    def __str__(self) -> str:
        return f"{self.player_id} in {self.season_id}: {self.points}"


class SeasonResult(models.Model):
    """A closed season's final standings, archived for good (never recomputed)."""

    season = models.ForeignKey(Season, on_delete=models.CASCADE, related_name="results")
    player = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="season_results")
    rank = models.PositiveIntegerField()
    points = models.PositiveIntegerField()
    achievement_count = models.PositiveIntegerField()
    region = models.CharField(max_length=8, blank=True, default="")
    position = models.PositiveIntegerField(help_text="Order on the final board, ties included.")

    class Meta:
        ordering = ["season", "position"]
        constraints = [models.UniqueConstraint(fields=["season", "player"], name="result_once_per_season")]
        indexes = [models.Index(fields=["season", "position"], name="result_board")]

    def __str__(self) -> str:
        return f"#{self.rank} {self.player_id} in {self.season_id}"


class ModerationAction(models.Model):
    """The audit trail of moderation: who did what to whom, when and why."""

    class Kind(models.TextChoices):
        HIDE = "hide", "Hid player from boards"
        RESTORE = "restore", "Restored player to boards"
        REVOKE = "revoke", "Revoked an unlock"
        GRANT = "grant", "Granted an achievement"
        CLOSE_SEASON = "close_season", "Closed a season"
        REBUILD = "rebuild", "Rebuilt the rank index"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="moderation_done"
    )
    player = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="moderation_received"
    )
    season = models.ForeignKey(Season, null=True, blank=True, on_delete=models.SET_NULL)
    reason = models.TextField(blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created"]
        permissions = [("moderate", "Can hide players and revoke unlocks")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} by {self.actor_id}"
