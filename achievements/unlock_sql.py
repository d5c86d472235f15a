"""The durable write of unlocks: one statement, one round trip, the one home of its rules.

`write` sends the statement in ``unlock.sql`` (beside this module, read once at import),
whose data-modifying CTEs, in one transaction, do everything an unlock must do before it
may answer 2xx:

1. ``INSERT INTO achievements_unlock … ON CONFLICT (player, achievement) DO NOTHING``
   for every requested pair whose player exists and is active: the unique constraint
   decides which unlocks are new, whatever the concurrency. Nothing is read first, so a
   repeated request changes nothing (idempotence).
2. One upsert of the per-game stats and one of the player totals, adding only the new
   unlocks' points (read from the achievements table, never from a cache) and counts;
   completion is recomputed against the game's current set, hidden achievements included.
   The per-game row also counts its progression and win-condition unlocks; from those
   counters and the game's own (kept by the manifest import) the awards these unlocks
   completed are inserted, ``ON CONFLICT DO NOTHING``, at the unlock time: beaten and
   mastered (docs/awards.md), judged only for the (player, game) rows this statement
   changed. The row lock of the upsert orders concurrent unlocks of one player's game, so
   the write that completes an award sees every unlock committed before it.
3. One upsert of the standings of every open season the new unlocks count in (window
   ``[starts_at, ends_at)`` holding the unlock time, the season's region, its chosen
   achievements). These rules live here only; the season recount
   (`achievements.services.recount_season`) counts the same unlocks from scratch, and
   tests/test_unlock_statement.py proves both agree with a model of the rules.
4. One outbox row (kind ``unlocks``, payload `infra.outbox.UnlocksPayload`, built with
   ``jsonb_build_object``) with what the after-commit work needs: the new unlocks, the
   rise of every board they moved, from the same rows the reply returns as what moved,
   and the awards they earned. No NOTIFY: PostgreSQL serialises the commits of notifying transactions, fsync
   included, which capped unlocks at a few hundred a second; the relay polls instead.

Points are exact (added in the row's own upsert, never read and written back); a board's
tie-break time is the unlock time truncated to the second. Every upsert takes its rows in
(key) order, so concurrent batches lock rows in one order and cannot deadlock. The reply
(`Result`) names every column and every field of its rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypedDict

from infra.sql import prepared_cursor

STATEMENT = (Path(__file__).parent / "unlock.sql").read_text()


class Created(TypedDict):
    """An unlock the statement inserted (a new one)."""

    player_id: str
    achievement_id: str


class Present(TypedDict):
    """A requested player that exists and is active."""

    player_id: str
    region: str
    hidden: bool  # taken off every board by moderation


class Moved(TypedDict):
    """A player's points on one all-regions board as the write left them."""

    kind: str  # "game" | "global" | "season"
    scope: str  # game id, season id, or "" for global
    player_id: str
    points: int
    reached_at: str | None  # ISO 8601
    added: int  # how many of `points` this write added
    season_region: str  # for kind "season": the season's region, "" for all regions


class Held(TypedDict):
    """When a requested pair that exists was unlocked (now or before)."""

    player_id: str
    achievement_id: str
    unlocked_at: str  # ISO 8601


@dataclass(frozen=True)
class Result:
    """The statement's reply, one field per named column (none is None: [] instead)."""

    created: list[Created]
    players: list[Present]
    moved: list[Moved]
    earlier: list[Held]


def write(
    pairs: Sequence[tuple[Any, Any, datetime | None]],
    *,
    at: datetime,
    source: str,
    game_key_id: Any,
    live: bool,
) -> Result:
    """Run the statement for (player_id, achievement_id, claimed_at) `pairs`, sorted and
    without duplicates, at `at`; `live=False` records no outbox event."""
    with prepared_cursor() as cursor:
        cursor.execute(
            STATEMENT,
            {
                "players": [p for p, _, _ in pairs],
                "achievements": [a for _, a, _ in pairs],
                "claimed": [c for _, _, c in pairs],
                "at": at,
                "at_text": at.isoformat(),
                "second": at.replace(microsecond=0),
                "source": source,
                "game_key": game_key_id,
                "live": live,
            },
        )
        names = [column.name for column in cursor.description]
        # Django reads jsonb as text (JSONField decodes its own), so decode here.
        columns = {
            name: json.loads(value) if value else [] for name, value in zip(names, cursor.fetchone(), strict=True)
        }
    return Result(**columns)
