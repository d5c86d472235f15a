"""Writes that move boards: moderation, season close. Season points are added by the
unlock statement (achievements/unlock.sql) and recounted by `achievements.services`.
Keeping the rank index in step with them is `leaderboards.sync`; the live events of board
moves, `leaderboards.live`."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from redis.exceptions import RedisError

from infra import realtime
from leaderboards import index, ranking
from leaderboards.boards import Board
from leaderboards.models import ModerationAction, Season, SeasonResult
from leaderboards.sync import reindex_player_after_commit
from tracker import feedhead
from tracker.auth import EVERYONE, activity_audience, rows_for
from tracker.models import Player
from tracker.regions import Region

log = logging.getLogger("questboard.leaderboards")

# Seasons close this long after their end, so that an unlock transaction that began
# before the end has certainly committed its season points.
CLOSE_GRACE = timedelta(seconds=30)
# A closed season's finish at this rank or better shows in the player's friends' feeds.
FEED_FINISH_RANK = 10


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
        feedhead.shown_changed(player)


def restore_player(*, player: Player, actor: Player | None, reason: str) -> None:
    with transaction.atomic():
        Player.objects.filter(pk=player.pk).update(boards_hidden=False)
        player.boards_hidden = False
        record_moderation(kind=ModerationAction.Kind.RESTORE, actor=actor, player=player, reason=reason)
        reindex_player_after_commit(player)
        feedhead.shown_changed(player)


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
        finishers = activity_audience(e.player_id for e in ranked if e.rank <= FEED_FINISH_RANK)
        feedhead.changed_on_commit(finishers)
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
            # A top finish is news in the finishers' friends' feeds (docs/feed.md).
            + realtime.feed_updated(finishers)
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
