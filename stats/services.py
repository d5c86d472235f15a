"""Counters kept exact inside the transaction of the write that changes them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from django.db import IntegrityError, transaction
from django.db.models import F, FloatField, Value
from django.db.models.functions import Cast
from django.utils import timezone

from infra.errors import Conflict, Invalid
from infra.locks import lock_until_commit
from infra.sql import add_counters, prep, table
from stats.models import PlayerGameStats, PlayerTotals, PlaySession
from tracker.models import Game, Player


@dataclass(frozen=True)
class PointsDelta:
    """A change to one player's totals in one game."""

    player_id: UUID
    game_id: UUID
    points: int
    achievements: int


@dataclass(frozen=True)
class NewTotals:
    """Rows as they stand after `apply_deltas`, with the points it added:
    (player_id, game_id, points, reached_at, added) per game, and (player_id, points,
    reached_at, added) overall."""

    games: list[tuple]
    players: list[tuple]


def apply_deltas(deltas: Iterable[PointsDelta], *, at: datetime) -> NewTotals:
    """Add `deltas` to the per-game stats and the per-player totals, exactly.

    Completion is recomputed in the same statement as unlocked over the game's whole set,
    hidden achievements included. `at` is truncated to the second: boards break ties by
    the second a score was reached (see leaderboards.ranking).
    """
    per_game: dict[tuple[UUID, UUID], list[int]] = defaultdict(lambda: [0, 0])
    per_player: dict[UUID, list[int]] = defaultdict(lambda: [0, 0])
    for delta in deltas:
        for bucket in (per_game[(delta.player_id, delta.game_id)], per_player[delta.player_id]):
            bucket[0] += delta.points
            bucket[1] += delta.achievements
    if not per_game:
        return NewTotals([], [])
    at = at.replace(microsecond=0)

    def completion(count: str, game: str) -> str:
        return (
            f"COALESCE(100.0 * {count} / (SELECT NULLIF(g.achievement_count, 0)"
            f" FROM {table(Game)} g WHERE g.id = {game}), 0)"
        )

    when = prep(PlayerGameStats, "last_activity", at)
    games = add_counters(
        PlayerGameStats,
        keys=("player", "game"),
        # Trailing values fill the %s of insert_extra, in order.
        rows=[
            (player_id, game_id, points, count, count, prep(PlayerGameStats, "game", game_id), when, when)
            for (player_id, game_id), (points, count) in sorted(per_game.items())
        ],
        at=at,
        insert_extra={
            "completion": completion("%s", "%s"),
            "first_activity": "%s",
            "last_activity": "%s",
            "playtime_seconds": "0",
        },
        update_extra={
            "completion": completion("(t.achievement_count + excluded.achievement_count)", "excluded.game_id"),
            # A revocation (negative count) is not activity by the player.
            "last_activity": "CASE WHEN excluded.achievement_count > 0"
            " THEN excluded.last_activity ELSE t.last_activity END",
        },
    )
    players = add_counters(
        PlayerTotals,
        keys=("player",),
        rows=[(player_id, points, count) for player_id, (points, count) in sorted(per_player.items())],
        at=at,
    )
    for (player_id, game_id), (_, count) in per_game.items():
        if count < 0:  # revocations update in place, without the completion expression
            refresh_completion(game=Game.objects.get(pk=game_id), player_ids=[player_id])
    return NewTotals(
        games=[(*row, per_game[(row[0], row[1])][0]) for row in games],
        players=[(*row, per_player[row[0]][0]) for row in players],
    )


def refresh_completion(*, game: Game, player_ids: Iterable[UUID] | None = None) -> None:
    """Recompute completion of `game` for every player (after its achievement set changed)
    or for some."""
    rows = PlayerGameStats.objects.filter(game=game)
    if player_ids is not None:
        rows = rows.filter(player_id__in=player_ids)
    if game.achievement_count == 0:
        rows.update(completion=0.0)
    else:
        rows.update(
            completion=Cast(F("achievement_count"), FloatField()) * Value(100.0) / Value(float(game.achievement_count))
        )
    if player_ids is None:
        Game.objects.filter(pk=game.pk).update(completion_basis=game.achievement_count)


@dataclass(frozen=True)
class SessionOutcome:
    session: PlaySession
    created: bool


MAX_SESSION = timedelta(hours=24)


def _serialise_sessions(player: Player, game: Game) -> None:
    """Reports of one player's sessions in one game take turns (until commit), so two
    overlapping ones sent at once cannot both pass the overlap check. SQLite serialises
    writers anyway."""
    lock_until_commit(f"session:{player.pk}:{game.pk}")


def record_play_session(
    *, player: Player, game: Game, session_id: str, started_at: datetime, ended_at: datetime, source: str
) -> SessionOutcome:
    """Record a play session once per (player, game, session_id) and add its playtime.

    A repeat with the same id changes nothing and returns the session first recorded. A
    session overlapping another of the same player in the same game is refused (409):
    time played is counted once. Sessions that only touch (one ends as the next starts)
    do not overlap.
    """
    if ended_at < started_at:
        raise Invalid("A session cannot end before it starts.", fields={"ended_at": ["Before started_at."]})
    if ended_at - started_at > MAX_SESSION:
        raise Invalid("A session longer than 24 hours is not plausible.", fields={"duration_seconds": ["Too long."]})
    duration = int((ended_at - started_at).total_seconds())
    with transaction.atomic():
        _serialise_sessions(player, game)
        existing = PlaySession.objects.filter(player=player, game=game, session_id=session_id).first()
        if existing is not None:
            return SessionOutcome(existing, created=False)
        overlapping = (
            PlaySession.objects.filter(player=player, game=game, started_at__lt=ended_at, ended_at__gt=started_at)
            .order_by("started_at")
            .first()
        )
        if overlapping is not None:
            # Playtime counts time once: a session inside another one is the same time played.
            raise Conflict(
                f"This session overlaps session '{overlapping.session_id}' of the same player in this game "
                f"({overlapping.started_at.isoformat()} to {overlapping.ended_at.isoformat()}).",
                fields={"started_at": ["Overlaps an earlier session."]},
            )
        try:
            with transaction.atomic():
                session = PlaySession.objects.create(
                    player=player,
                    game=game,
                    session_id=session_id,
                    started_at=started_at,
                    ended_at=ended_at,
                    duration_seconds=duration,
                    source=source,
                )
        except IntegrityError:
            existing = PlaySession.objects.get(player=player, game=game, session_id=session_id)
            return SessionOutcome(existing, created=False)
        begun, ended = (
            prep(PlayerGameStats, "first_activity", started_at),
            prep(PlayerGameStats, "last_activity", ended_at),
        )
        add_counters(
            PlayerGameStats,
            keys=("player", "game"),
            rows=[(player.pk, game.pk, 0, 0, duration, begun, ended)],
            at=timezone.now(),
            insert_extra={"playtime_seconds": "%s", "first_activity": "%s", "last_activity": "%s", "completion": "0"},
            update_extra={
                "playtime_seconds": "t.playtime_seconds + excluded.playtime_seconds",
                "first_activity": "CASE WHEN t.first_activity IS NULL OR excluded.first_activity < t.first_activity"
                " THEN excluded.first_activity ELSE t.first_activity END",
                "last_activity": "CASE WHEN t.last_activity IS NULL OR excluded.last_activity > t.last_activity"
                " THEN excluded.last_activity ELSE t.last_activity END",
            },
        )
    return SessionOutcome(session, created=True)
