"""Daily snapshots: each active player's totals at the end of a UTC day.

History and trend charts read only these rows, by date range. A day's snapshot is
derived from the current totals minus what happened after that day, so it only reads
that day's and later activity, never a player's whole unlock history.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Sum

from achievements.models import Unlock
from stats.models import DailySnapshot, PlayerGameStats, PlaySession
from tracker.models import Game


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def _unlock_sums(game: Game, since: datetime, until: datetime | None = None) -> dict[Any, tuple[int, int]]:
    unlocks = Unlock.objects.filter(game=game, unlocked_at__gte=since)
    if until is not None:
        unlocks = unlocks.filter(unlocked_at__lt=until)
    rows = unlocks.values("player_id").annotate(points=Sum("achievement__points"), count=Count("id"))
    return {row["player_id"]: (row["points"] or 0, row["count"]) for row in rows}


def _playtime_sums(game: Game, since: datetime, until: datetime | None = None) -> dict[Any, int]:
    sessions = PlaySession.objects.filter(game=game, ended_at__gte=since)
    if until is not None:
        sessions = sessions.filter(ended_at__lt=until)
    rows = sessions.values("player_id").annotate(seconds=Sum("duration_seconds"))
    return {row["player_id"]: row["seconds"] or 0 for row in rows}


def take_snapshots(day: date) -> int:
    """Write (or rewrite) the snapshots of `day` for every player active on it: one per
    game they played and one over all games. Returns the number of rows written."""
    start, end = day_bounds(day)
    per_game: list[DailySnapshot] = []
    overall_gain: dict[Any, list[int]] = defaultdict(lambda: [0, 0, 0])
    for game in Game.objects.all():
        gained, played = _unlock_sums(game, start, end), _playtime_sums(game, start, end)
        active = set(gained) | set(played)
        if not active:
            continue
        later, later_play = _unlock_sums(game, end), _playtime_sums(game, end)
        for player_id, points, count, playtime in PlayerGameStats.objects.filter(
            game=game, player_id__in=active
        ).values_list("player_id", "points", "achievement_count", "playtime_seconds"):
            later_points, later_count = later.get(player_id, (0, 0))
            day_points, day_count = gained.get(player_id, (0, 0))
            per_game.append(
                DailySnapshot(
                    player_id=player_id,
                    game=game,
                    date=day,
                    points=max(points - later_points, 0),
                    achievement_count=max(count - later_count, 0),
                    playtime_seconds=max(playtime - later_play.get(player_id, 0), 0),
                    points_gained=day_points,
                    unlocks=day_count,
                    playtime_gained=played.get(player_id, 0),
                )
            )
            bucket = overall_gain[player_id]
            bucket[0] += day_points
            bucket[1] += day_count
            bucket[2] += played.get(player_id, 0)

    overall = _overall(day, overall_gain) if overall_gain else []
    with transaction.atomic():
        DailySnapshot.objects.filter(date=day).delete()
        DailySnapshot.objects.bulk_create(per_game + overall, batch_size=2000)
    return len(per_game) + len(overall)


def _overall(day: date, gains: dict[Any, list[int]]) -> list[DailySnapshot]:
    """Totals over every game at the end of `day`, for the players active on it."""
    players = list(gains)
    _, end = day_bounds(day)
    current = {
        row["player_id"]: row
        for row in PlayerGameStats.objects.filter(player_id__in=players)
        .values("player_id")
        .annotate(points=Sum("points"), count=Sum("achievement_count"), playtime=Sum("playtime_seconds"))
    }
    later = {
        row["player_id"]: row
        for row in Unlock.objects.filter(player_id__in=players, unlocked_at__gte=end)
        .values("player_id")
        .annotate(points=Sum("achievement__points"), count=Count("id"))
    }
    later_play = dict(
        PlaySession.objects.filter(player_id__in=players, ended_at__gte=end)
        .values("player_id")
        .annotate(seconds=Sum("duration_seconds"))
        .values_list("player_id", "seconds")
    )
    snapshots = []
    for player_id in players:
        now, after = current.get(player_id, {}), later.get(player_id, {})
        snapshots.append(
            DailySnapshot(
                player_id=player_id,
                game=None,
                date=day,
                points=max((now.get("points") or 0) - (after.get("points") or 0), 0),
                achievement_count=max((now.get("count") or 0) - (after.get("count") or 0), 0),
                playtime_seconds=max((now.get("playtime") or 0) - (later_play.get(player_id) or 0), 0),
                points_gained=gains[player_id][0],
                unlocks=gains[player_id][1],
                playtime_gained=gains[player_id][2],
            )
        )
    return snapshots
