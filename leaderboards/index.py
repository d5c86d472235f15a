"""The rank index: Redis sorted sets, with indexed SQL as its twin.

Both stores answer the same few order-and-count questions about a board; the ranking
rules themselves (ties, percentiles) live once, in `leaderboards.ranking`, and are applied
by `leaderboards.selectors` to whichever store answered.

Redis is used when it is configured, reachable and has been built (the READY key, set by
a full rebuild, disappears if Redis restarts empty). Each Redis read is one Lua call that
checks READY itself, in the same round trip and atomically with the read, and raises
`IndexNotReady` when it is missing. `leaderboards.selectors.ask` then puts the same
question to the SQL store: slower, with the same results.

Every call to Redis goes through the process's breaker for that Redis (`infra.breaker`):
after one times out or cannot connect, calls raise `breaker.Open` at once for
REDIS_BREAKER_SECONDS instead of each waiting REDIS_TIMEOUT, so a silent Redis costs one
request a timeout, and the others answer from SQL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings
from django.db.models import Count, Q
from redis.exceptions import RedisError

from infra import breaker
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


@dataclass(frozen=True)
class Window:
    """Consecutive entries of a board's order, with what ranking them needs."""

    entries: list[Entry]
    offset: int  # 0-based position of entries[0] in the board's order
    ahead_of_first: int  # players with strictly more points than entries[0]; 0 if empty
    total: int  # players on the board


class IndexNotReady(RedisError):
    """The index is not built (no READY key: Redis restarted empty, or was never built)."""


class Store(Protocol):
    """The order-and-count questions a board read asks; Redis and SQL answer alike.

    `page_with_counts` and `around` are what the board reads use: each is one round trip
    on Redis, its counts consistent with its entries.
    """

    name: str

    def page(self, board: Board, offset: int, limit: int) -> list[Entry]: ...
    def count_above(self, board: Board, points: int) -> int: ...
    def standing(self, board: Board, player_id: str) -> Standing | None: ...
    def total(self, board: Board) -> int: ...
    def page_with_counts(self, board: Board, offset: int, limit: int) -> Window: ...
    def around(self, board: Board, player_id: str, radius: int) -> tuple[Standing, Window] | None:
        """The player's standing and the window of board positions within `radius` of theirs,
        or None if they are not on the board."""
        ...

    def moves(self, items: Sequence[tuple[Board, str, int]]) -> list[tuple[int, int] | None]:
        """For each (board, player, points before a rise): the player's rank now and how
        many players have more than those points, or None if the player is not on the
        board. Live board events ask this of a whole batch of unlocks at once."""
        ...


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
        """Two queries: the player's row, then every count in one pass over the board."""
        rows = board.rows()
        mine = rows.filter(player_id=player_id).values_list("points", "points_reached_at").first()
        if mine is None:
            return None
        points, reached = mine
        # Ties are ordered by the second the score was reached, then player id descending.
        ahead = (
            Q(points__gt=points)
            | Q(points=points, points_reached_at__lt=reached)
            | Q(points=points, points_reached_at=reached, player_id__gt=player_id)
        )
        counts = rows.aggregate(
            position=Count("player_id", filter=ahead),
            above=Count("player_id", filter=Q(points__gt=points)),
            below=Count("player_id", filter=Q(points__lt=points)),
            total=Count("player_id"),
        )
        return Standing(points=points, **counts)

    def page_with_counts(self, board: Board, offset: int, limit: int) -> Window:
        """Two queries: the entries, then the count above the first and the total."""
        entries = self.page(board, offset, limit)
        if not entries:
            return Window(entries, offset, 0, self.total(board))
        counts = board.rows().aggregate(
            above=Count("player_id", filter=Q(points__gt=entries[0].points)), total=Count("player_id")
        )
        return Window(entries, offset, counts["above"], counts["total"])

    def around(self, board: Board, player_id: str, radius: int) -> tuple[Standing, Window] | None:
        mine = self.standing(board, player_id)
        if mine is None:
            return None
        start = max(0, mine.position - radius)
        entries = self.page(board, start, mine.position - start + radius + 1)
        if not entries:  # the board shrank between the two queries
            above = 0
        elif entries[0].points == mine.points:  # starts among the player's equals: known
            above = mine.above
        else:
            above = self.count_above(board, entries[0].points)
        return mine, Window(entries, start, above, mine.total)

    def moves(self, items: Sequence[tuple[Board, str, int]]) -> list[tuple[int, int] | None]:
        moved: list[tuple[int, int] | None] = []
        for board, player_id, before in items:
            mine = self.standing(board, player_id)
            moved.append(None if mine is None else (mine.above + 1, self.count_above(board, before)))
        return moved


# The read scripts. Each is a board read's only round trip, and atomic, so its counts agree
# with its entries even while unlocks land. Every one takes KEYS = (READY, the board) and
# first answers NOT_READY if the index is not built, so that check costs no trip of its
# own. Points are decoded in Lua (score // TIME_SPAN: exact, as scores are integers below
# 2**53). Numbers handed to redis.call are formatted exactly by Redis, but Lua's own
# number-to-string keeps 14 digits: fine for points (< 2**21), not for scores, hence
# string.format where a score bound is built as a string.
NOT_READY = b"not-ready"
_READY_CHECK = "if redis.call('EXISTS', KEYS[1]) == 0 then return 'not-ready' end\n"
# Entries come back as one string, "member points member points ...", not as two replies
# each: redis-py parses replies in Python, about 4 us apiece, 0.8 ms for a page of 100.
# Members are player ids (UUIDs), so never contain a space.
_LISTING = """
local function listing(rows, span)
  local out = {}
  for i = 1, #rows, 2 do
    out[i] = rows[i]
    out[i + 1] = math.floor(tonumber(rows[i + 1]) / span)
  end
  return table.concat(out, ' ')
end
"""

# A player's standing: {points, position, above, below, total}, or nil if not on the
# board. With a radius >= 0 (ARGV[3]), also the window of positions within that radius:
# {..., its start, players ahead of its first entry, its listing}.
STANDING_LUA = (
    _READY_CHECK
    + _LISTING
    + """
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not score then return false end
local span = tonumber(ARGV[2])
local points = math.floor(tonumber(score) / span)
local position = redis.call('ZREVRANK', KEYS[2], ARGV[1])
local above = redis.call('ZCOUNT', KEYS[2], (points + 1) * span, '+inf')
local below = redis.call('ZCOUNT', KEYS[2], '-inf', string.format('(%.17g', points * span))
local out = {points, position, above, below, redis.call('ZCARD', KEYS[2])}
local radius = tonumber(ARGV[3])
if radius < 0 then return out end
local start = math.max(0, position - radius)
local rows = redis.call('ZREVRANGE', KEYS[2], start, position + radius, 'WITHSCORES')
local first = math.floor(tonumber(rows[2]) / span)  -- never empty: the player is in it
out[6] = start
out[7] = redis.call('ZCOUNT', KEYS[2], (first + 1) * span, '+inf')
out[8] = listing(rows, span)
return out
"""
)

# A page: {total, players ahead of its first entry, its listing}. ARGV: offset, limit,
# TIME_SPAN.
PAGE_LUA = (
    _READY_CHECK
    + _LISTING
    + """
local first = tonumber(ARGV[1])
local last = first + tonumber(ARGV[2]) - 1
local span = tonumber(ARGV[3])
local total = redis.call('ZCARD', KEYS[2])
-- A limit of 0: ZREVRANGE would read a stop of -1 as "to the end".
if last < first then return {total, 0, ''} end
local rows = redis.call('ZREVRANGE', KEYS[2], first, last, 'WITHSCORES')
if #rows == 0 then return {total, 0, ''} end
local top = math.floor(tonumber(rows[2]) / span)
return {total, redis.call('ZCOUNT', KEYS[2], (top + 1) * span, '+inf'), listing(rows, span)}
"""
)

# Players scoring at least ARGV[1]; everyone on the board if it is ''.
COUNT_LUA = (
    _READY_CHECK
    + """
if ARGV[1] == '' then return redis.call('ZCARD', KEYS[2]) end
return redis.call('ZCOUNT', KEYS[2], ARGV[1], '+inf')
"""
)


def _entries(listing: bytes) -> list[Entry]:
    """Entries from a script's listing ("member points member points ...")."""
    words = iter(listing.decode().split())
    return [Entry(member, int(points)) for member, points in zip(words, words, strict=True)]


# Live board events for a batch of unlocks, in one round trip: for each (board, player,
# points before) the player's rank now (0: not on the board) and the players above the
# points before. KEYS: READY, the boards; ARGV: TIME_SPAN, (member, points before) pairs.
MOVES_PER_CALL = 500
MOVES_LUA = (
    _READY_CHECK
    + """
local span = tonumber(ARGV[1])
local found = {}
for i = 2, #KEYS do
  local member, before = ARGV[2 * i - 2], tonumber(ARGV[2 * i - 1])
  local score = redis.call('ZSCORE', KEYS[i], member)
  if score then
    local points = math.floor(tonumber(score) / span)
    found[#found + 1] = redis.call('ZCOUNT', KEYS[i], (points + 1) * span, '+inf') + 1
  else
    found[#found + 1] = 0
  end
  found[#found + 1] = redis.call('ZCOUNT', KEYS[i], (before + 1) * span, '+inf')
end
return found
"""
)


# The unlock's one round trip after commit: raise scores (ZADD GT, so a late, older update
# never lowers a newer one), then each asked player's rank (1 + players with more points),
# unless the index is not built. KEYS: READY, n changed boards, the asked boards; ARGV:
# TIME_SPAN, n, n (member, score or "" to remove) pairs, the asked members.
APPLY_AND_RANK_LUA = """
local span = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
for i = 1, n do
  local member, score = ARGV[1 + 2 * i], ARGV[2 + 2 * i]
  if score == '' then
    redis.call('ZREM', KEYS[1 + i], member)
  else
    redis.call('ZADD', KEYS[1 + i], 'GT', score, member)
  end
end
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local ranks = {}
for j = 1, #KEYS - 1 - n do
  local key, member = KEYS[1 + n + j], ARGV[2 + 2 * n + j]
  local score = redis.call('ZSCORE', key, member)
  if score then
    local points = math.floor(tonumber(score) / span)
    ranks[j] = redis.call('ZCOUNT', key, (points + 1) * span, '+inf') + 1
  else
    ranks[j] = 0
  end
end
return ranks
"""


class RedisStore:
    name = "redis"

    def __init__(self, client: Any, url: str = "") -> None:
        self.client = client
        self.url = url
        # Shared with the cache when the index lives on its Redis (the same URL).
        self.breaker = breaker.for_redis(url, client.ping)
        self._standing = client.register_script(STANDING_LUA)
        self._page = client.register_script(PAGE_LUA)
        self._count = client.register_script(COUNT_LUA)
        self._apply_and_rank = client.register_script(APPLY_AND_RANK_LUA)
        self._moves = client.register_script(MOVES_LUA)

    # --- reads: one script call each; IndexNotReady if the index is not built ---------------

    def _read(self, script: Any, board: Board, *args: Any) -> Any:
        found = self.breaker.call(script, keys=[READY_KEY, board.key], args=args)
        if found == NOT_READY:
            raise IndexNotReady("the rank index is not built")
        return found

    def page_with_counts(self, board: Board, offset: int, limit: int) -> Window:
        found = self._read(self._page, board, offset, limit, ranking.TIME_SPAN)
        return Window(_entries(found[2]), offset, int(found[1]), int(found[0]))

    def page(self, board: Board, offset: int, limit: int) -> list[Entry]:
        return self.page_with_counts(board, offset, limit).entries

    def count_above(self, board: Board, points: int) -> int:
        return int(self._read(self._count, board, ranking.lowest_score(points + 1)))

    def total(self, board: Board) -> int:
        return int(self._read(self._count, board, ""))

    def standing(self, board: Board, player_id: str) -> Standing | None:
        found = self._read(self._standing, board, player_id, ranking.TIME_SPAN, -1)
        return Standing(*(int(v) for v in found)) if found else None

    def around(self, board: Board, player_id: str, radius: int) -> tuple[Standing, Window] | None:
        found = self._read(self._standing, board, player_id, ranking.TIME_SPAN, max(radius, 0))
        if not found:
            return None
        mine = Standing(*(int(v) for v in found[:5]))
        return mine, Window(_entries(found[7]), int(found[5]), int(found[6]), mine.total)

    def moves(self, items: Sequence[tuple[Board, str, int]]) -> list[tuple[int, int] | None]:
        """One script call per MOVES_PER_CALL items: a script blocks Redis while it runs."""
        moved: list[tuple[int, int] | None] = []
        for start in range(0, len(items), MOVES_PER_CALL):
            chunk = items[start : start + MOVES_PER_CALL]
            args: list[Any] = [ranking.TIME_SPAN]
            for _, player_id, before in chunk:
                args += [player_id, before]
            found = self.breaker.call(self._moves, keys=[READY_KEY] + [board.key for board, _, _ in chunk], args=args)
            if found == NOT_READY:
                raise IndexNotReady("the rank index is not built")
            pairs = zip(found[::2], found[1::2], strict=True)
            moved += [(int(rank), int(above)) if int(rank) else None for rank, above in pairs]
        return moved

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
        self.breaker.call(pipe.execute)

    def apply_and_rank(
        self, changes: Sequence[tuple[Board, str, int | None]], asks: Sequence[tuple[Board, str]]
    ) -> dict[tuple[Board, str], int | None] | None:
        """`apply(changes, only_up=True)`, then the rank of each asked (board, player), in
        one round trip. A rank is None for a player not on that board.

        None when the index is not built (READY missing), or when Redis did not answer or
        is left alone for now (the breaker, which says so once in the log): ranks must then
        come from SQL, without asking Redis again, and the scores reach the index through
        the outbox relay. So an unlock pays at most one timeout for both."""
        keys = [READY_KEY] + [board.key for board, _, _ in changes] + [board.key for board, _ in asks]
        args: list[Any] = [ranking.TIME_SPAN, len(changes)]
        for _, player_id, score in changes:
            args += [player_id, "" if score is None else score]
        args += [player_id for _, player_id in asks]
        try:
            found = self.breaker.call(self._apply_and_rank, keys=keys, args=args)
        except RedisError as error:
            if breaker.is_outage(error):
                return None
            raise
        if found is None:
            return None
        return {ask: (int(rank) if int(rank) > 0 else None) for ask, rank in zip(asks, found, strict=True)}

    def board_keys(self) -> list[str]:
        return self.breaker.call(
            lambda: [key.decode() for key in self.client.scan_iter(match=f"{KEY_PREFIX}:*", count=1000)]
        )

    def is_ready(self) -> bool:
        return bool(self.breaker.call(self.client.exists, READY_KEY))

    def mark_ready(self) -> None:
        self.breaker.call(self.client.set, READY_KEY, "1")


SQL = SqlStore()


_store: RedisStore | None = None


def redis_store() -> RedisStore | None:
    """The Redis store if Redis is configured, else None (the embedded default): on the
    cache's Redis, or on RANK_INDEX_REDIS_URL's when that is another. Kept while its client
    lives, so the Lua scripts are registered once per process."""
    global _store
    if not settings.REDIS_URL:
        return None
    url = settings.RANK_INDEX_REDIS_URL or settings.REDIS_URL
    if url == settings.REDIS_URL:
        from django_redis import get_redis_connection

        client = get_redis_connection("default")
    elif _store is not None and _store.url == url:
        return _store
    else:
        client = client_for(url)
    if _store is None or _store.client is not client:
        _store = RedisStore(client, url=url)
    return _store


CLUSTER_SCHEME = "redis+cluster://"


def client_for(url: str) -> Any:
    """A client for `url`, with the app's timeouts: a Redis Cluster client for
    `redis+cluster://host:port` (any node; the others are discovered), else a plain one."""
    import redis
    from redis.cluster import RedisCluster

    timeouts = {"socket_connect_timeout": settings.REDIS_TIMEOUT, "socket_timeout": settings.REDIS_TIMEOUT}
    if url.startswith(CLUSTER_SCHEME):
        return RedisCluster.from_url("redis://" + url.removeprefix(CLUSTER_SCHEME), **timeouts)
    return redis.Redis.from_url(url, **timeouts)


def reader() -> Store:
    """The store to ask first: Redis when configured, else SQL. Whether Redis is built and
    reachable is learnt from the read itself (IndexNotReady, RedisError, `breaker.Open`),
    which costs no round trip of its own; `selectors.ask` then asks SQL instead."""
    return redis_store() or SQL


def score_of(points: int, reached_at: Any) -> int | None:
    return ranking.encode(points, reached_at) if points > 0 else None
