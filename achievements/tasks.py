"""Background work on achievement sets: the global unlock rate and rarity."""

from __future__ import annotations

import logging
import math
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from celery import shared_task
from django.core.cache import cache
from django.db.models import Count, F, FloatField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from achievements.models import Achievement, Unlock
from achievements.selectors import achievement_data
from leaderboards import services as board_services
from leaderboards.services import Rise
from stats.models import PlayerGameStats, PlayerTotals
from tracker import outbox, realtime
from tracker.celery import app as celery_app
from tracker.models import Game

log = logging.getLogger("questboard.achievements")

RARITY_DEBOUNCE_SECONDS = 60


def schedule_rarity_refresh(game_ids: Iterable[str]) -> None:
    """Refresh rarity soon after unlocks: with a broker, once a minute per game at most
    (the delayed task sees every unlock of its minute); inline without one (the laptop
    default), where no delayed task could follow.

    Failing to schedule is harmless: the periodic full refresh covers every game.
    """
    for game_id in game_ids:
        try:
            if celery_app.conf.task_always_eager:
                refresh_rarity(game_id)
            elif cache.add(f"rarity-pending:{game_id}", 1, timeout=RARITY_DEBOUNCE_SECONDS):
                refresh_rarity.apply_async(args=[game_id], countdown=RARITY_DEBOUNCE_SECONDS)
        except Exception:
            log.warning("could not schedule a rarity refresh for game %s", game_id, exc_info=True)


@shared_task
def refresh_rarity(game_id: str) -> None:
    """Recompute each achievement's global unlock count and percentage in one game.

    The denominator is every player with any recorded activity in the game.
    """
    players = PlayerGameStats.objects.filter(game_id=game_id).count()
    counts = dict(
        Unlock.objects.filter(game_id=game_id)
        .values("achievement")
        .annotate(n=Count("id"))
        .values_list("achievement", "n")
    )
    achievements = list(Achievement.objects.filter(game_id=game_id))
    average = (sum(counts.values()) / len(achievements) / players) if achievements and players else 0.0
    changed = []
    for achievement in achievements:
        count = counts.get(achievement.pk, 0)
        percentage = round(100.0 * count / players, 2) if players else 0.0
        weight = round(score_weight(count, players, average), 4)
        if (achievement.unlock_count, achievement.unlock_percentage, achievement.score_weight) != (
            count,
            percentage,
            weight,
        ):
            achievement.unlock_count, achievement.unlock_percentage, achievement.score_weight = (
                count,
                percentage,
                weight,
            )
            changed.append(achievement)
    Achievement.objects.bulk_update(changed, ["unlock_count", "unlock_percentage", "score_weight"])


# The rarity-weighted score (docs/rarity.md): each unlock is worth points × weight, where
# weight = 1 + ln(1 / p) and p is the achievement's unlock rate smoothed toward the game's
# average rate with the weight of PRIOR_PLAYERS players, so that an achievement with few
# players is neither wildly rare nor common until real numbers arrive.
PRIOR_PLAYERS = 10
MIN_RATE = 0.001


def score_weight(unlocks: int, players: int, game_average_rate: float) -> float:
    rate = (unlocks + PRIOR_PLAYERS * game_average_rate) / (players + PRIOR_PLAYERS)
    return 1.0 + math.log(1.0 / max(rate, MIN_RATE)) if rate < 1 else 1.0


@shared_task
def refresh_weighted_scores(game_id: str) -> None:
    """Recompute every player's rarity-weighted score in one game, and their totals."""
    weighted = (
        Unlock.objects.filter(player=OuterRef("player"), game=OuterRef("game"))
        .values("player")
        .annotate(total=Sum(F("achievement__points") * F("achievement__score_weight"), output_field=FloatField()))
        .values("total")
    )
    PlayerGameStats.objects.filter(game_id=game_id).update(
        weighted_score=Coalesce(Subquery(weighted, output_field=FloatField()), Value(0.0))
    )
    per_player = (
        PlayerGameStats.objects.filter(player=OuterRef("player"))
        .values("player")
        .annotate(total=Sum("weighted_score"))
        .values("total")
    )
    PlayerTotals.objects.filter(player__game_stats__game_id=game_id).update(
        weighted_score=Coalesce(Subquery(per_player, output_field=FloatField()), Value(0.0))
    )


@shared_task
def refresh_all_rarity() -> None:
    """Rarity, then weighted scores, for every game (Celery beat)."""
    for game_id in Game.objects.values_list("pk", flat=True):
        refresh_rarity.delay(str(game_id))
        refresh_weighted_scores.delay(str(game_id))


def relay_unlocks(events: list[dict[str, Any]]) -> None:
    """The outbox handler of committed unlocks (payload: `services.Written.event`), in order:

    1. a rarity refresh, debounced (best effort: the periodic refresh covers every game;
       inline, without a broker, it runs first so the toast shows the new rarity);
    2. achievement.unlocked to each player: the toast players wait for;
    3. the new scores into the rank index again (ZADD GT never lowers a score, so a repeat
       or a late arrival is harmless) — this is what ranks a player whose unlock landed
       while Redis was away;
    4. a `board_moves` event for the slower work (leaderboard.updated, rival alerts),
       relayed on its own so a broker outage holds up only that.

    Raises when the channel layer or Redis fails, so the batch stays pending.
    """
    toasts: list[tuple[str, str, str]] = []
    rises: list[Rise] = []
    risen_at: list[datetime] = []
    games: set[str] = set()
    for event in events:
        at = datetime.fromisoformat(event["at"])
        toasts += [(player_id, achievement_id, event["at"]) for player_id, achievement_id, _, _ in event["unlocks"]]
        games |= {game_id for _, _, game_id, _ in event["unlocks"]}
        for rise in rises_of(event):
            rises.append(rise)
            risen_at.append(at)
    schedule_rarity_refresh(sorted(games))
    achievements = Achievement.objects.in_bulk({uuid.UUID(a) for _, a, _ in toasts})
    realtime.broadcast(
        [
            (
                realtime.player_group(player_id),
                "achievement.unlocked",
                {"player_id": player_id, "achievement": achievement_data(achievements[uuid.UUID(a)]), "timestamp": at},
            )
            for player_id, a, at in toasts
            if uuid.UUID(a) in achievements
        ],
        strict=True,
    )
    board_services.push_rises(list(zip(rises, risen_at, strict=True)))
    if rises:
        outbox.record("board_moves", {"rises": [list(rise) for rise in rises]})


def rises_of(event: dict[str, Any]) -> list[Rise]:
    """(board kind, scope, player, points before, points after) for every board on which
    an unlock event raised a player's points: the game's, the global one, and seasons'."""
    per_game: dict[tuple[str, str], int] = defaultdict(int)
    per_player: dict[str, int] = defaultdict(int)
    for player_id, _, game_id, points in event["unlocks"]:
        per_game[(player_id, game_id)] += points
        per_player[player_id] += points
    rises: list[Rise] = [
        ("game", game_id, player_id, points - per_game[(player_id, game_id)], points)
        for player_id, game_id, points in event["games"]
        if per_game[(player_id, game_id)]
    ]
    rises += [
        ("global", "", player_id, points - per_player[player_id], points)
        for player_id, points in event["totals"]
        if per_player[player_id]
    ]
    rises += [
        ("season", season_id, player_id, points - added, points)
        for season_id, player_id, points, added in event["seasons"]
        if added > 0
    ]
    return rises
