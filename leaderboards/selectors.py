"""Reads of boards: pages, a player's standing, the window around them.

Each read asks a store (Redis, or SQL when Redis is not available) for order and counts,
then applies the ranking rules from `leaderboards.ranking`. If the index is not built, or
Redis fails mid-read, the same question is asked of SQL. While Redis is silent its breaker
(`infra.breaker`) refuses at once, so each read goes straight to SQL.

These are hot paths; what each costs is pinned by tests/test_board_read_costs.py:

- a page (top 100, any board) or the window around a player: one Redis call (a Lua script
  that also checks the index is built), then one query for the names and privacy of the
  players listed (plus one for the caller's friends, only when a player asks and a
  friends-only player is listed);
- a standing: one Redis call, no query;
- the friends board: SQL only, one query for the friends and one for their rows and names.

Rows are built as plain dicts here, no model instances or serializers per row; who is
named, and identifiable by id, on them is decided by `tracker.auth.rows_for`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from redis.exceptions import RedisError

from infra import breaker
from infra.sql import prepared_cursor
from leaderboards import index, ranking
from leaderboards.boards import Board
from leaderboards.models import Season, SeasonResult
from tracker.auth import ANONYMOUS_NAME, Caller, friend_ids, rows_for
from tracker.models import Player

log = logging.getLogger("questboard.leaderboards")
T = TypeVar("T")


def ask(question: Callable[[index.Store], T]) -> tuple[T, str]:
    """`question` answered by the index, or by SQL if the index is not built (the next
    `sync.run_sync` pass rebuilds it: a read never enqueues work) or Redis fails.
    Questions only read, so asking twice is harmless.

    An outage (no answer, or the breaker refusing) is logged by the breaker, once when it
    opens, not here by every read it sends to SQL."""
    store = index.reader()
    try:
        return question(store), store.name
    except index.IndexNotReady:
        pass
    except RedisError as error:
        if not breaker.is_outage(error):
            log.warning("rank index failed mid-read; answering from SQL", exc_info=True)
    return question(index.SQL), index.SQL.name


@dataclass(frozen=True)
class Page:
    rankings: list[dict[str, Any]]
    total: int
    source: str


# (username, privacy) by player id (str), for the players a page lists.
People = dict[str, tuple[str, str]]
PEOPLE_SQL = f"SELECT id::text, username, privacy FROM {Player._meta.db_table} WHERE id = ANY(%s::uuid[])"


def people_of(player_ids: Iterable[str]) -> People:
    """Names and privacy of these players (ids as the stores give them: canonical UUID
    strings), in one query of just those columns. Unknown ids are left out.

    Hot path, so it is hand-written, the ids passed as one uuid[] and read back as text:
    the ORM's IN list of 100 spends about 1 ms of Python preparing the ids, more than the
    query takes. Prepared (`prepared_cursor`): bound on the server, not quoted into the
    text, and planned once per connection; the ids go as one array literal, which psycopg
    sends as it is instead of adapting a hundred strings one by one (the ids are the
    stores' own UUID strings: nothing in them needs quoting).
    """
    with prepared_cursor() as cursor:
        cursor.execute(PEOPLE_SQL, ["{" + ",".join(player_ids) + "}"])
        return {pk: (username, privacy) for pk, username, privacy in cursor.fetchall()}


def board_rows(
    caller: Caller,
    ranked: list[ranking.Ranked],
    people: People,
    game_id: Any = None,
    friends: Collection[Any] | None = None,
) -> list[dict[str, Any]]:
    """Board rows as this caller may see them (`tracker.auth.rows_for`): a player hidden
    from the caller, or unknown, keeps their rank and points but is anonymous, id included.
    `friends`: the caller's friends' ids, when already known (see `names_visible_to`)."""
    rows = [
        {
            "player_id": r.player_id,
            "username": people[r.player_id][0] if r.player_id in people else ANONYMOUS_NAME,
            "points": r.points,
            "rank": r.rank,
        }
        for r in ranked
    ]
    privacy = {pid: privacy for pid, (_, privacy) in people.items()}
    return rows_for(caller, rows, privacy, game_id=game_id, friends=friends)


def rankings_data(caller: Caller, ranked: list[ranking.Ranked], game_id: Any = None) -> list[dict[str, Any]]:
    """Board rows with usernames; names of players hidden from this caller are masked."""
    if not ranked:
        return []
    return board_rows(caller, ranked, people_of(r.player_id for r in ranked), game_id)


def ranked_window(window: index.Window) -> list[ranking.Ranked]:
    return ranking.assign_ranks(window.entries, offset=window.offset, ahead_of_first=window.ahead_of_first)


def page(caller: Caller, board: Board, *, offset: int = 0, limit: int = 100, game_id: Any = None) -> Page:
    window, source = ask(lambda store: store.page_with_counts(board, offset, limit))
    return Page(rankings_data(caller, ranked_window(window), game_id), window.total, source)


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


def standing_within(page: Page, player_id: Any) -> PlayerStanding | None:
    """`player_id`'s standing among the rows of a board read whole as one page (the friends
    board): their rank there, and the share of those rows they are ahead of."""
    rows = page.rankings
    for position, row in enumerate(rows):
        if row["player_id"] == str(player_id):
            fewer = sum(1 for other in rows if other["points"] < row["points"])
            return PlayerStanding(
                rank=row["rank"],
                points=row["points"],
                percentile=ranking.percentile(fewer, len(rows)),
                total=len(rows),
                position=position,
            )
    return None


def around(caller: Caller, board: Board, player_id: Any, *, radius: int = 5, game_id: Any = None) -> Page | None:
    """The window of players just above and below `player_id`, or None if not ranked."""
    found, source = ask(lambda store: store.around(board, str(player_id), radius))
    if found is None:
        return None
    _, window = found
    return Page(rankings_data(caller, ranked_window(window), game_id), window.total, source)


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
    nature, so read straight from SQL with the same ordering and rules; names come with
    the rows, and the friendships are already known."""
    friends = friend_ids(player)
    rows = (
        board.rows()
        .filter(player_id__in=friends | {player.pk})
        .order_by(*index.ORDER)
        .values_list("player_id", "points", "player__username", "player__privacy")
    )
    entries, people = [], {}
    for player_id, points, username, privacy in rows:
        entries.append(ranking.Entry(str(player_id), points))
        people[str(player_id)] = (username, privacy)
    ranked = ranking.assign_ranks(entries, offset=0, ahead_of_first=0)
    rankings = board_rows(Caller(player=player), ranked, people, game_id, friends=friends)
    return Page(rankings, len(entries), index.SQL.name)
