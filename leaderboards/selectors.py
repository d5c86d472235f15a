"""Reads of boards: pages, a player's standing, the window around them.

Each read asks a store (Redis, or SQL when Redis is not available) for order and counts,
then applies the ranking rules from `leaderboards.ranking`. If Redis fails mid-read, the
same question is asked of SQL.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from redis.exceptions import RedisError

from leaderboards import index, ranking
from leaderboards.boards import Board
from leaderboards.models import Season, SeasonResult
from tracker.auth import Caller, friend_ids, names_visible_to
from tracker.models import Player

log = logging.getLogger("questboard.leaderboards")
T = TypeVar("T")
ANONYMOUS_NAME = "Anonymous player"


def ask(question: Callable[[index.Store], T]) -> tuple[T, str]:
    store = index.reader()
    try:
        return question(store), store.name
    except RedisError:
        log.warning("rank index failed mid-read; answering from SQL", exc_info=True)
        return question(index.SQL), index.SQL.name


@dataclass(frozen=True)
class Page:
    rankings: list[dict[str, Any]]
    total: int
    source: str


def rankings_data(caller: Caller, ranked: list[ranking.Ranked], game_id: Any = None) -> list[dict[str, Any]]:
    """Board rows with usernames; names of players hidden from this caller are masked."""
    players = Player.objects.in_bulk([uuid.UUID(r.player_id) for r in ranked])
    visible = names_visible_to(caller, players.values(), game_id=game_id)
    rows = []
    for r in ranked:
        player = players.get(uuid.UUID(r.player_id))
        name = player.username if player is not None and player.pk in visible else ANONYMOUS_NAME
        rows.append({"player_id": r.player_id, "username": name, "points": r.points, "rank": r.rank})
    return rows


def page(caller: Caller, board: Board, *, offset: int = 0, limit: int = 100, game_id: Any = None) -> Page:
    def question(store: index.Store) -> tuple[list[ranking.Entry], int, int]:
        entries = store.page(board, offset, limit)
        above = store.count_above(board, entries[0].points) if entries else 0
        return entries, above, store.total(board)

    (entries, above, total), source = ask(question)
    ranked = ranking.assign_ranks(entries, offset=offset, ahead_of_first=above)
    return Page(rankings_data(caller, ranked, game_id), total, source)


@dataclass(frozen=True)
class PlayerStanding:
    rank: int
    points: int
    percentile: float
    total: int
    position: int


def standing(board: Board, player_id: Any) -> PlayerStanding | None:
    found, _ = ask(lambda store: store.standing(board, str(player_id)))
    if found is None:
        return None
    return PlayerStanding(
        rank=found.above + 1,
        points=found.points,
        percentile=ranking.percentile(found.below, found.total),
        total=found.total,
        position=found.position,
    )


def around(caller: Caller, board: Board, player_id: Any, *, radius: int = 5, game_id: Any = None) -> Page | None:
    """The window of players just above and below `player_id`, or None if not ranked."""

    def question(store: index.Store) -> tuple[list[ranking.Entry], int, int, int] | None:
        mine = store.standing(board, str(player_id))
        if mine is None:
            return None
        start = max(0, mine.position - radius)
        entries = store.page(board, start, mine.position - start + radius + 1)
        return entries, store.count_above(board, entries[0].points), mine.total, start

    found, source = ask(question)
    if found is None:
        return None
    entries, above, total, start = found
    ranked = ranking.assign_ranks(entries, offset=start, ahead_of_first=above)
    return Page(rankings_data(caller, ranked, game_id), total, source)


def rank_on(board: Board, player_id: Any) -> int | None:
    found = standing(board, player_id)
    return found.rank if found else None


def archived_page(caller: Caller, season: Season, *, region: str = "", offset: int = 0, limit: int = 100) -> Page:
    """A closed season's final standings from the archive. Ranks are the archived ones for
    the whole season, and recomputed with the same rules within a region."""
    results = SeasonResult.objects.filter(season=season)
    if region:
        results = results.filter(region=region)
    total = results.count()
    rows = list(results.order_by("position").values_list("player_id", "points", "rank")[offset : offset + limit])
    if region:
        entries = [ranking.Entry(str(p), points) for p, points, _ in rows]
        above = results.filter(points__gt=rows[0][1]).count() if rows else 0
        ranked = ranking.assign_ranks(entries, offset=offset, ahead_of_first=above)
    else:
        ranked = [ranking.Ranked(str(p), points, rank) for p, points, rank in rows]
    return Page(rankings_data(caller, ranked, season.game_id), total, "archive")


def archived_standing(season: Season, player_id: Any, region: str = "") -> PlayerStanding | None:
    results = SeasonResult.objects.filter(season=season)
    if region:
        results = results.filter(region=region)
    mine = results.filter(player_id=player_id).values_list("points", "position").first()
    if mine is None:
        return None
    points, position = mine
    total = results.count()
    return PlayerStanding(
        rank=results.filter(points__gt=points).count() + 1,
        points=points,
        percentile=ranking.percentile(results.filter(points__lt=points).count(), total),
        total=total,
        position=position,
    )


def friends_page(player: Player, board: Board, game_id: Any = None) -> Page:
    """A board narrowed to the player and their friends, ranked among themselves. Small by
    nature, so read straight from SQL with the same ordering and rules."""
    members = friend_ids(player) | {player.pk}
    rows = board.rows().filter(player_id__in=members).order_by(*index.ORDER).values_list("player_id", "points")
    entries = [ranking.Entry(str(player_id), points) for player_id, points in rows]
    ranked = ranking.assign_ranks(entries, offset=0, ahead_of_first=0)
    return Page(rankings_data(Caller(player=player), ranked, game_id), len(entries), index.SQL.name)
