"""Writes that move boards: season points, moderation, season close. Keeping the rank index
in step with them is `leaderboards.sync`; the live events of board moves, `leaderboards.live`."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from redis.exceptions import RedisError

from infra import realtime
from infra.sql import add_counters
from leaderboards import index, ranking
from leaderboards.boards import Board, Moves, Score
from leaderboards.models import ModerationAction, Season, SeasonResult, SeasonStanding
from leaderboards.sync import reindex_player_after_commit
from tracker.auth import EVERYONE, rows_for
from tracker.models import Player
from tracker.regions import Region

log = logging.getLogger("questboard.leaderboards")

# Seasons close this long after their end, so that an unlock transaction that began
# before the end has certainly committed its season points.
CLOSE_GRACE = timedelta(seconds=30)


# --- Season points, inside the unlock (or revocation) transaction -------------------------


def apply_season_points(items: Sequence[tuple[Player, Any, datetime]], *, sign: int, at: datetime) -> Moves:
    """Add (sign=1) or remove (sign=-1) the points of unlocks to every open season they
    count in. `items` are (player, achievement, unlocked_at). An unlock counts in a season
    of its game when unlocked_at is inside [starts_at, ends_at), the player is of the
    season's region (if it has one) and the achievement is among the season's chosen ones
    (if it has any). Closed seasons are archived and never change.

    Returns what moved: each standing written, with the points added, and its season's region.
    """
    none = Moves([], {})
    if not items:
        return none
    times = [unlocked_at for *_, unlocked_at in items]
    seasons = list(
        Season.objects.filter(
            game_id__in={achievement.game_id for _, achievement, _ in items},
            closed_at__isnull=True,
            starts_at__lte=max(times),
            ends_at__gt=min(times),
        )
    )
    if not seasons:
        return none
    chosen: dict[Any, set[Any]] = defaultdict(set)
    for season_id, achievement_id in Season.achievements.through.objects.filter(season__in=seasons).values_list(
        "season_id", "achievement_id"
    ):
        chosen[season_id].add(achievement_id)

    deltas: dict[tuple[Any, Any], list[int]] = defaultdict(lambda: [0, 0])
    for player, achievement, unlocked_at in items:
        for season in seasons:
            if (
                season.game_id == achievement.game_id
                and season.starts_at <= unlocked_at < season.ends_at
                and (not season.region or season.region == player.region)
                and (season.pk not in chosen or achievement.pk in chosen[season.pk])
            ):
                bucket = deltas[(season.pk, player.pk)]
                bucket[0] += sign * achievement.points
                bucket[1] += sign
    if not deltas:
        return none
    rows = [(season_id, player_id, points, count) for (season_id, player_id), (points, count) in sorted(deltas.items())]
    written = add_counters(SeasonStanding, keys=("season", "player"), rows=rows, at=at.replace(microsecond=0))
    return Moves(
        scores=[
            Score(Board.season(season_id), str(player_id), points, reached, deltas[(season_id, player_id)][0])
            for season_id, player_id, points, reached in written
        ],
        season_regions={str(season.pk): season.region for season in seasons},
    )


# --- Moderation ---------------------------------------------------------------------------


def record_moderation(
    *, kind: str, actor: Player | None, player: Player | None = None, reason: str = "", **details: Any
) -> ModerationAction:
    season = details.pop("season", None)
    return ModerationAction.objects.create(
        kind=kind, actor=actor, player=player, season=season, reason=reason, details=details
    )


def hide_player(*, player: Player, actor: Player | None, reason: str) -> None:
    """Take a player off every board (a cheater, say). Their unlocks stay recorded."""
    with transaction.atomic():
        Player.objects.filter(pk=player.pk).update(boards_hidden=True)
        player.boards_hidden = True
        record_moderation(kind=ModerationAction.Kind.HIDE, actor=actor, player=player, reason=reason)
        reindex_player_after_commit(player)


def restore_player(*, player: Player, actor: Player | None, reason: str) -> None:
    with transaction.atomic():
        Player.objects.filter(pk=player.pk).update(boards_hidden=False)
        player.boards_hidden = False
        record_moderation(kind=ModerationAction.Kind.RESTORE, actor=actor, player=player, reason=reason)
        reindex_player_after_commit(player)


# --- Seasons ------------------------------------------------------------------------------


def close_season(*, season: Season, actor: Player | None = None, now: datetime | None = None) -> bool:
    """Archive a season's final standings for good and close it. Closing early (an admin's
    "close now") also ends its window now. Returns False if it was already closed."""
    now = now or timezone.now()
    with transaction.atomic():
        season = Season.objects.select_for_update().get(pk=season.pk)
        if season.closed_at is not None:
            return False
        if season.ends_at > now:
            season.ends_at = max(now, season.starts_at + timedelta(microseconds=1))
        board = Board.season(season.pk)
        rows = list(
            board.rows()
            .order_by(*index.ORDER)
            .values_list(
                "player_id", "points", "achievement_count", "player__region", "player__username", "player__privacy"
            )
        )
        ranked = ranking.assign_ranks(
            [ranking.Entry(str(p), points) for p, points, *_ in rows], offset=0, ahead_of_first=0
        )
        SeasonResult.objects.bulk_create(
            [
                SeasonResult(
                    season=season,
                    player_id=player_id,
                    rank=entry.rank,
                    points=points,
                    achievement_count=count,
                    region=region,
                    position=position,
                )
                for position, ((player_id, points, count, region, _, _), entry) in enumerate(
                    zip(rows, ranked, strict=True)
                )
            ],
            batch_size=5000,
        )
        season.closed_at = now
        season.save(update_fields=["ends_at", "closed_at"])
        record_moderation(
            kind=ModerationAction.Kind.CLOSE_SEASON, actor=actor, season=season, players=len(rows), automatic=not actor
        )
        keys = [board] + [board.with_region(code) for code, _ in Region.choices]
        transaction.on_commit(lambda: _drop_boards(keys))
        # Season watchers may be anyone: the podium names only whom anyone may see.
        podium = rows_for(
            EVERYONE,
            [
                {"rank": entry.rank, "player_id": entry.player_id, "username": username, "points": entry.points}
                for entry, (*_, username, _) in zip(ranked[:10], rows[:10], strict=True)
            ],
            {str(player_id): privacy for player_id, *_, privacy in rows[:10]},
        )
        realtime.broadcast_on_commit(
            [
                (
                    realtime.season_group(season.pk),
                    "season.closed",
                    {
                        "season_id": str(season.pk),
                        "game_id": str(season.game_id),
                        "name": season.name,
                        "closed_at": now.isoformat(),
                        "players": len(rows),
                        "top": podium,
                    },
                )
            ]
        )
    return True


def _drop_boards(boards: Iterable[Board]) -> None:
    store = index.redis_store()
    if store is None:
        return
    try:
        store.client.delete(*[board.key for board in boards])
    except RedisError:
        log.warning("could not drop closed season boards", exc_info=True)


def close_due_seasons(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    closed = 0
    for season in Season.objects.due_to_close(now - CLOSE_GRACE):
        closed += close_season(season=season, now=now)
    return closed
