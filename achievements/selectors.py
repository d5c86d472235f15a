"""Reads of achievements and unlocks, and the lookups every endpoint shares."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from achievements.models import Achievement, Progress, Unlock, rarity_tier
from tracker.errors import NotFound
from tracker.models import Game, Player

HIDDEN_NAME = "Hidden achievement"


def achievement_data(achievement: Achievement, *, masked: bool = False) -> dict[str, Any]:
    """An achievement as the API shows it; `masked` hides what a hidden one is about."""
    return {
        "id": str(achievement.pk),
        "game_id": str(achievement.game_id),
        "api_name": None if masked else achievement.api_name,
        "name": HIDDEN_NAME if masked else achievement.name,
        "description": "" if masked else achievement.description,
        "icon": "" if masked else achievement.icon,
        "points": achievement.points,
        "hidden": achievement.hidden,
        "client_unlockable": achievement.client_unlockable,
        "progress_target": achievement.progress_target,
        "unlock_percentage": achievement.unlock_percentage,
        "rarity": rarity_tier(achievement.unlock_percentage, achievement.unlock_count),
    }


def get_achievement(
    *, achievement_id: Any = None, api_name: str | None = None, game: Game | None = None
) -> Achievement:
    achievements = Achievement.objects.select_related("game")
    if achievement_id is not None:
        found = achievements.filter(pk=achievement_id).first()
    else:
        found = achievements.filter(game=game, api_name=api_name).first()
    if found is None:
        raise NotFound(f"Unknown achievement '{achievement_id or api_name}'.")
    return found


def achievements_by_ref(refs: Iterable[Any], *, game: Game | None) -> dict[Any, Achievement]:
    """Achievements by id, and by api_name within `game`, in one query each."""
    ids, names = set(), set()
    for ref in refs:
        (ids if isinstance(ref, uuid.UUID) else names).add(ref)
    found: dict[Any, Achievement] = {}
    if ids:
        found.update({a.pk: a for a in Achievement.objects.select_related("game").filter(pk__in=ids)})
    if names and game is not None:
        found.update(
            {a.api_name: a for a in Achievement.objects.select_related("game").filter(game=game, api_name__in=names)}
        )
    return found


def player_unlocks(player: Player, *, game: Game | None = None) -> QuerySet[Unlock]:
    """A player's unlocks, newest first."""
    unlocks = Unlock.objects.filter(player=player).select_related("achievement").order_by("-unlocked_at", "-id")
    if game is not None:
        unlocks = unlocks.filter(game=game)
    return unlocks


def game_achievements_for(game: Game, viewer: Player | None) -> list[dict[str, Any]]:
    """The game's set, with the viewer's own unlock and progress when there is a viewer."""
    achievements = list(game.achievements.all())
    unlocked: dict[Any, Any] = {}
    progress: dict[Any, int] = {}
    if viewer is not None:
        unlocked = dict(Unlock.objects.filter(player=viewer, game=game).values_list("achievement_id", "unlocked_at"))
        progress = dict(
            Progress.objects.filter(player=viewer, achievement__game=game).values_list("achievement_id", "value")
        )
    return [{"achievement": a, "unlocked_at": unlocked.get(a.pk), "progress": progress.get(a.pk)} for a in achievements]
