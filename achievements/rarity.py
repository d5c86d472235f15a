"""An achievement's global unlock rate and rarity, and the rarity-weighted scores that
follow from them (docs/rarity.md). The Celery tasks in `achievements.tasks` and the demo
loader call these; nothing else writes these columns."""

from __future__ import annotations

import math

from django.db.models import Count, F, FloatField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from achievements.models import Achievement, Unlock
from infra.numbers import share
from stats.models import PlayerGameStats, PlayerTotals


def refresh_rarity(*, game_id: object) -> None:
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
        percentage = share(count, players)
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


def refresh_weighted_scores(*, game_id: object) -> None:
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
