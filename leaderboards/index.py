"""The rank index: Redis sorted sets, with indexed SQL as its twin.

Both stores answer the same few order-and-count questions about a board; the ranking
rules themselves (ties, percentiles) live once, in `leaderboards.ranking`, and are applied
by `leaderboards.selectors` to whichever store answered.

Redis is used when it is configured, reachable and has been built (the READY key, set by
a full rebuild, disappears if Redis restarts empty). Otherwise the SQL store answers,
slower but with the same results.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings
from django.db.models import Q
from redis.exceptions import RedisError

from leaderboards import ranking
from leaderboards.boards import KEY_PREFIX, Board
from leaderboards.ranking import Entry

log = logging.getLogger("questboard.leaderboards")

READY_KEY = f"{KEY_PREFIX}:ready"
ORDER = ("-points", "points_reached_at", "-player_id")


@dataclass(frozen=True)
class Standing:
    points: int
    position: int  # 0-based place in the board's total order
    above: int  # players with strictly more points
    below: int  # players with strictly fewer points
    total: int


class Store(Protocol):
    name: str

    def page(self, board: Board, offset: int, limit: int) -> list[Entry]: ...
    def count_above(self, board: Board, points: int) -> int: ...
    def standing(self, board: Board, player_id: str) -> Standing | None: ...
    def total(self, board: Board) -> int: ...


class SqlStore:
    name = "sql"

    def page(self, board: Board, offset: int, limit: int) -> list[Entry]:
        rows = board.rows().order_by(*ORDER).values_list("player_id", "points")[offset : offset + limit]
        return [Entry(str(player_id), points) for player_id, points in rows]

    def count_above(self, board: Board, points: int) -> int:
        return board.rows().filter(points__gt=points).count()

    def total(self, board: Board) -> int:
        return board.rows().count()

    def standing(self, board: Board, player_id: str) -> Standing | None:
        rows = board.rows()
        mine = rows.filter(player_id=player_id).values_list("points", "points_reached_at").first()
        if mine is None:
            return None
        points, reached = mine
        # Ties are ordered by the second the score was reached, then player id descending.
        ahead = rows.filter(
            Q(points__gt=points)
            | Q(points=points, points_reached_at__lt=reached)
            | Q(points=points, points_reached_at=reached, player_id__gt=player_id)
        ).count()
        return Standing(
            points=points,
            position=ahead,
            above=self.count_above(board, points),
            below=rows.filter(points__lt=points).count(),
            total=self.total(board),
        )


# One round trip for a player's standing: score, position, above, below, total.
STANDING_LUA = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return false end
local span = tonumber(ARGV[2])
local points = math.floor(tonumber(score) / span)
local position = redis.call('ZREVRANK', KEYS[1], ARGV[1])
local above = redis.call('ZCOUNT', KEYS[1], (points + 1) * span, '+inf')
local below = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. (points * span))
local total = redis.call('ZCARD', KEYS[1])
return {points, position, above, below, total}
"""


class RedisStore:
    name = "redis"

    def __init__(self, client: Any) -> None:
        self.client = client
        self._standing = client.register_script(STANDING_LUA)

    def page(self, board: Board, offset: int, limit: int) -> list[Entry]:
        rows = self.client.zrevrange(board.key, offset, offset + limit - 1, withscores=True)
        return [Entry(member.decode(), ranking.decode_points(score)) for member, score in rows]

    def count_above(self, board: Board, points: int) -> int:
        return int(self.client.zcount(board.key, ranking.lowest_score(points + 1), "+inf"))

    def total(self, board: Board) -> int:
        return int(self.client.zcard(board.key))

    def standing(self, board: Board, player_id: str) -> Standing | None:
        found = self._standing(keys=[board.key], args=[player_id, ranking.TIME_SPAN])
        if not found:
            return None
        points, position, above, below, total = (int(v) for v in found)
        return Standing(points, position, above, below, total)

    # --- writes ---------------------------------------------------------------------------

    def apply(self, changes: Iterable[tuple[Board, str, int | None]], *, only_up: bool) -> None:
        """Set each (board, player, score) — None removes the player — in one round trip.

        `only_up` (ZADD GT) is for unlocks, whose scores only grow: a late, older update can
        then never overwrite a newer one, whatever order the commits' hooks run in.
        """
        pipe = self.client.pipeline(transaction=False)
        for board, player_id, score in changes:
            if score is None:
                pipe.zrem(board.key, player_id)
            else:
                pipe.zadd(board.key, {player_id: score}, gt=only_up)
        pipe.execute()

    def board_keys(self) -> list[str]:
        return [key.decode() for key in self.client.scan_iter(match=f"{KEY_PREFIX}:*", count=1000)]

    def is_ready(self) -> bool:
        return bool(self.client.exists(READY_KEY))

    def mark_ready(self) -> None:
        self.client.set(READY_KEY, "1")


SQL = SqlStore()


_store: RedisStore | None = None


def redis_store() -> RedisStore | None:
    """The Redis store if Redis is configured, else None (the embedded default). Kept while
    django-redis keeps its client, so the Lua script is registered once per process."""
    global _store
    if not settings.REDIS_URL:
        return None
    from django_redis import get_redis_connection

    client = get_redis_connection("default")
    if _store is None or _store.client is not client:
        _store = RedisStore(client)
    return _store


def reader() -> Store:
    """The store to answer reads from: Redis when it is built and reachable, else SQL."""
    store = redis_store()
    if store is None:
        return SQL
    try:
        if store.is_ready():
            return store
        from leaderboards import tasks

        tasks.request_rebuild()
    except RedisError:
        log.warning("rank index unreachable; answering from SQL", exc_info=True)
    return SQL


def score_of(points: int, reached_at: Any) -> int | None:
    return ranking.encode(points, reached_at) if points > 0 else None
