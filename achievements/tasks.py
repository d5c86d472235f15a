"""Background work on achievement sets: the global unlock rate and rarity."""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Iterable

from celery import shared_task
from django.core.cache import cache
from django.db.models import Count, F, FloatField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from achievements.models import Achievement, Unlock
from achievements.selectors import achievement_data
from leaderboards import services as board_services
from stats.models import PlayerGameStats, PlayerTotals
from tracker import realtime
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


@shared_task
def announce_unlocks(unlocks: list[list[str]], rises: list[list]) -> int:
    """The live side of unlocks, after commit: achievement.unlocked to each player,
    leaderboard.updated on every board that moved, and rival alerts (recorded, then sent).

    `unlocks`: [player_id, achievement_id, unlocked_at]; `rises`: see services._rises.
    Returns the number of events sent.
    """
    achievements = Achievement.objects.in_bulk([a for _, a, _ in unlocks])
    unlocked: list[realtime.Message] = [
        (
            realtime.player_group(player_id),
            "achievement.unlocked",
            {"player_id": player_id, "achievement": achievement_data(achievements[uuid.UUID(a)]), "timestamp": at},
        )
        for player_id, a, at in unlocks
        if uuid.UUID(a) in achievements
    ]
    realtime.broadcast(unlocked)  # first: the toast players wait for needs no rank queries
    messages = board_services.board_moves(tuple(rise) for rise in rises)
    for kind, game_id, player_id, old, new in rises:
        if kind == "game":
            alerts = board_services.notify_rivals(player_id=player_id, game_id=game_id, old_points=old, new_points=new)
            messages += board_services.rival_messages(alerts)
    realtime.broadcast(messages)
    return len(unlocked) + len(messages)
