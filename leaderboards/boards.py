"""Which boards exist, what each is keyed by, and which rows are their truth in SQL."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from django.db.models import QuerySet

from infra.outbox import PassedItem, RiseItem
from leaderboards.models import Season, SeasonStanding
from stats.models import PlayerGameStats, PlayerTotals

# Every key of the rank index shares one Redis Cluster hash tag ("{qb:lb}"), so they live on
# one node: an unlock's one atomic script writes a game's boards, the global ones and its
# seasons', and every read checks the index's READY key in the same script as it reads a
# board. Redis without Cluster ignores the braces (docs/deployment.md, "Redis").
KEY_PREFIX = "{qb:lb}"


@dataclass(frozen=True)
class Board:
    """One ranking: a game's all-time board, the cross-game global board, or a season's;
    each for every region (`region` "") or one region."""

    kind: str  # "game" | "global" | "season"
    scope: str = ""  # game id or season id; "" for global
    region: str = ""

    @classmethod
    def game(cls, game_id: Any, region: str = "") -> Board:
        return cls("game", str(game_id), region)

    @classmethod
    def everywhere(cls, region: str = "") -> Board:
        return cls("global", "", region)

    @classmethod
    def season(cls, season_id: Any, region: str = "") -> Board:
        return cls("season", str(season_id), region)

    @classmethod
    def of_season(cls, season: Season, region: str = "") -> Board:
        """`season`'s board for `region`: a regional season has one (`Season.board_region`)."""
        return cls.season(season.pk, season.board_region(region))

    @property
    def key(self) -> str:
        parts = [KEY_PREFIX, self.kind]
        if self.scope:
            parts.append(self.scope)
        if self.region:
            parts.append(self.region)
        return ":".join(parts)

    def with_region(self, region: str) -> Board:
        return Board(self.kind, self.scope, region)

    def rows(self) -> QuerySet:
        """The SQL truth of this board: every ranked row (points > 0, player not hidden)."""
        if self.kind == "game":
            rows = PlayerGameStats.objects.filter(game_id=self.scope)
        elif self.kind == "global":
            rows = PlayerTotals.objects.all()
        else:
            rows = SeasonStanding.objects.filter(season_id=self.scope)
        rows = rows.filter(points__gt=0, player__boards_hidden=False, player__is_active=True)
        if self.region:
            rows = rows.filter(player__region=self.region)
        return rows


@dataclass(frozen=True)
class Member:
    """What decides which boards a player is on: their region, and whether moderation
    took them off every board."""

    region: str
    hidden: bool


class Change(NamedTuple):
    """One entry of the rank index to write: `player_id`'s `score` on `board` (None
    removes the player from it)."""

    board: Board
    player_id: str
    score: int | None


class Score(NamedTuple):
    """A player's points on one all-regions board as a write left them, and how many of
    them that write `added`: what moved where, computed once by the write (the unlock
    statement's `moved` rows) and read by the rank index (`leaderboards.sync.index_changes`) and, as a
    `Rise`, by the live side."""

    board: Board
    player_id: str
    points: int
    reached_at: datetime | None
    added: int = 0


class Moves(NamedTuple):
    """What one write moved: a `Score` per all-regions board it changed, and the region of
    each season among them (season id -> region, "" for an all-regions season), which
    decides whether that season has regional boards too."""

    scores: list[Score]
    season_regions: dict[str, str]


class Rise(NamedTuple):
    """Points of one player that an unlock raised on one all-regions board. On the wire
    (the outbox and Celery) it is an object with named fields, `infra.outbox.RiseItem`:
    `item()` writes it and `of()` reads it back."""

    kind: str  # "game" | "global" | "season"
    scope: str  # game id or season id; "" for global
    player_id: str
    before: int
    after: int
    # On a game's board: the friends this rise passed, decided when it happened. None for a
    # rise the previous release recorded, which did not decide it (docs/outbox.md).
    passed: tuple[PassedItem, ...] | None = ()

    @property
    def board(self) -> Board:
        return Board(self.kind, self.scope)

    def item(self) -> RiseItem:
        item: RiseItem = {
            "kind": self.kind,
            "scope": self.scope,
            "player_id": self.player_id,
            "before": self.before,
            "after": self.after,
        }
        if self.passed is not None:
            item["passed"] = list(self.passed)
        return item

    @classmethod
    def of(cls, item: RiseItem) -> Rise:
        return cls(
            kind=item["kind"],
            scope=item["scope"],
            player_id=item["player_id"],
            before=item["before"],
            after=item["after"],
            passed=tuple(item["passed"]) if "passed" in item else None,
        )


def boards_of(base: Board, region: str) -> list[Board]:
    """The boards a player of `region` is on, given the all-regions board `base`."""
    return [base, base.with_region(region)] if region else [base]


def uuid_of(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
