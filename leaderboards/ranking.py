"""The ranking rules, once. Every board, store and page goes through these functions.

- A board orders players by points, highest first; a player with no points is not on it.
- Equal points share a rank (standard competition ranking: 1, 2, 2, 4).
- Within equal points, whoever reached the score first is listed first (to the second);
  players who reached it in the same second are listed by player id, descending. This is
  the order a Redis sorted set gives for equal scores, so SQL uses it too.
- percentile = percentage of ranked players with strictly fewer points.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from infra.numbers import share

# A score packs points and the time they were reached into one float that Redis orders
# exactly: points in the high bits, (EPOCH_SPAN - seconds since EPOCH) in the low 32 bits,
# so more points always wins and, within equal points, the earlier time scores higher.
# A float holds integers exactly up to 2**53, so points up to 2**21 - 1 per board.
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
TIME_BITS = 32
TIME_SPAN = 2**TIME_BITS
MAX_POINTS = 2 ** (53 - TIME_BITS) - 1


def reached_second(reached_at: datetime | None) -> int:
    if reached_at is None:
        return 0
    return min(max(int((reached_at - EPOCH).total_seconds()), 0), TIME_SPAN - 1)


def encode(points: int, reached_at: datetime | None) -> int:
    """The sort score of `points` reached at `reached_at` (an integer, exact as a float)."""
    points = min(points, MAX_POINTS)
    return points * TIME_SPAN + (TIME_SPAN - 1 - reached_second(reached_at))


def decode_points(score: float) -> int:
    return int(score) // TIME_SPAN


def lowest_score(points: int) -> int:
    """The lowest score any player with exactly `points` can have."""
    return points * TIME_SPAN


@dataclass(frozen=True)
class Entry:
    player_id: str
    points: int


@dataclass(frozen=True)
class Ranked:
    player_id: str
    points: int
    rank: int


def assign_ranks(entries: Iterable[Entry], *, offset: int, ahead_of_first: int) -> list[Ranked]:
    """Ranks for consecutive entries of a board starting at position `offset` (0-based),
    given how many players have strictly more points than the first entry."""
    ranked: list[Ranked] = []
    for position, entry in enumerate(entries):
        if not position:
            rank = ahead_of_first + 1
        elif entry.points != ranked[-1].points:
            rank = offset + position + 1
        ranked.append(Ranked(entry.player_id, entry.points, rank))
    return ranked


def percentile(fewer: int, total: int) -> float:
    return share(fewer, total)
