"""The shape of the bench data, in one place: the SQL loader, the wrk Lua scripts and the
Python load generators all derive players and achievements from these numbers.

- Player n (1..players) has id 00000000-0000-4000-8000-<n as 12 hex digits> and username
  bench<n>; every 20th is private and every 20th (offset 10) friends-only, so anonymous
  reads pick only players with n % 10 != 0.
- The game has ACHIEVEMENTS achievements a000..a199. Preloaded unlocks use only the first
  PRELOADED; every unlock the run makes uses the others ("lanes"), so it is always new.
- Fresh (player, achievement) pairs come from a sequence number s: player 1 + s % span,
  lane s // span. A cursor kept in the bench database says where the next run starts, so
  pairs never repeat, within a run or across `--reuse` runs.
- The last `live_players` players are kept out of that sequence: the unlock-to-socket run
  has its own cursor over them, so its events are the only ones on their sockets.
"""

from __future__ import annotations

from dataclasses import dataclass

GAME_SLUG = "bench-quest"
ACHIEVEMENTS = 200
PRELOADED = 50
LANES = ACHIEVEMENTS - PRELOADED
BATCH = 100  # items per batch unlock: the API's maximum
REGIONS = ("na", "eu", "asia", "sa", "oce", "af")
UUID_PREFIX = "00000000-0000-4000-8000-"

# The cursor names in the bench_cursor table.
HTTP_CURSOR = "http"
LIVE_CURSOR = "live"


def player_id(n: int) -> str:
    return f"{UUID_PREFIX}{n:012x}"


def api_name(index: int) -> str:
    return f"a{index:03d}"


def points(index: int) -> int:
    """5..100, spread so that totals vary widely between players."""
    return 5 + (index * 37) % 96


def client_unlockable(index: int) -> bool:
    return index % 40 == 7


def manifest() -> dict[str, object]:
    """The game as `import_game` takes it (the operator contract's manifest)."""
    return {
        "slug": GAME_SLUG,
        "name": "Bench Quest",
        "achievements": [
            {
                "api_name": api_name(i),
                "name": f"Bench achievement {i}",
                "description": "Generated for the benchmark.",
                "points": points(i),
                "client_unlockable": client_unlockable(i),
            }
            for i in range(ACHIEVEMENTS)
        ],
    }


@dataclass(frozen=True)
class Pairs:
    """Fresh (player n, achievement index) pairs for sequence numbers over some players."""

    first_player: int
    span: int  # how many players, from first_player on

    @property
    def capacity(self) -> int:
        return self.span * LANES

    def pair(self, s: int) -> tuple[int, int]:
        if s >= self.capacity:
            raise ExhaustedError(f"all {self.capacity} fresh pairs are used; load afresh (drop --reuse)")
        return self.first_player + s % self.span, PRELOADED + s // self.span


class ExhaustedError(RuntimeError):
    pass


def http_pairs(players: int, live_players: int) -> Pairs:
    return Pairs(first_player=1, span=players - live_players)


def live_pairs(players: int, live_players: int) -> Pairs:
    return Pairs(first_player=players - live_players + 1, span=live_players)


# --- The friends' feed (the feed section) -------------------------------------------------
# Viewers, each with `friends` accepted friends out of a pool of players; every pool player
# has `unlocks` unlocks spread over 90 days across the feed games (a manifest holds at most
# FEED_SET achievements, every tenth hidden), beaten and mastered awards in each, top-ten
# finishes in closed seasons; each viewer has `alerts` rival alerts from their friends.
# Ids: pool player n (1..pool) and then viewer v as n = pool + v, under FEED_UUID_PREFIX.

FEED_UUID_PREFIX = "00000000-0000-4000-9000-"
FEED_SET = 1000


@dataclass(frozen=True)
class FeedShape:
    viewers: int
    friends: int  # per viewer
    pool: int
    unlocks: int  # per pool player
    alerts: int  # per viewer
    seasons: int

    @property
    def games(self) -> int:
        return -(-self.unlocks // FEED_SET)

    @property
    def stride(self) -> int:
        """Viewer v's friends are pool players (v - 1) * stride + k, k < friends, wrapping."""
        return max(1, (self.pool - self.friends) // max(1, self.viewers - 1))

    def viewer_id(self, v: int) -> str:
        return feed_player_id(self.pool + v)


def feed_player_id(n: int) -> str:
    return f"{FEED_UUID_PREFIX}{n:012x}"


def feed_manifest(game: int, count: int) -> dict[str, object]:
    return {
        "slug": f"feed-quest-{game}",
        "name": f"Feed Quest {game}",
        "achievements": [
            {
                "api_name": f"f{i:04d}",
                "name": f"Feed achievement {i}",
                "points": points(i),
                "hidden": i % 10 == 9,
            }
            for i in range(count)
        ],
    }
