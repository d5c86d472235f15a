"""Which boards exist, what each is keyed by, and which rows are their truth in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from leaderboards.models import SeasonStanding
from stats.models import PlayerGameStats, PlayerTotals

KEY_PREFIX = "qb:lb"


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


Change = tuple[Board, str, "int | None"]  # (board, player id, score; None removes the player)


def boards_of(base: Board, region: str) -> list[Board]:
    """The boards a player of `region` is on, given the all-regions board `base`."""
    return [base, base.with_region(region)] if region else [base]
