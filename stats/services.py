"""Counters kept exact inside the transaction of the write that changes them."""

from __future__ import annotations

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
from infra.sql import add_counters, prep
from stats.models import TYPE_COUNTERS, PlayerGameStats, PlayerTotals, PlaySession
from tracker.models import Game, Player


def take_back_unlock(*, player_id: UUID, game_id: UUID, points: int, at: datetime, achievement_type: str = "") -> None:
    """Take a revoked unlock out of the player's stats in its game (the counter of its
    `achievement_type` too) and totals, exactly (each row lowered in place, so a concurrent
    unlock's increment is never lost), and recompute that completion. The points' reached
    time stays: the board tie-break of the points the player still holds. Adding unlocks
    is the unlock statement's (achievements/unlock.sql), nowhere else."""
    lowered = {"points": F("points") - points, "achievement_count": F("achievement_count") - 1, "updated_at": at}
    counter = TYPE_COUNTERS.get(achievement_type)
    typed = {counter: F(counter) - 1} if counter else {}
    PlayerGameStats.objects.filter(player_id=player_id, game_id=game_id).update(**lowered, **typed)
    PlayerTotals.objects.filter(player_id=player_id).update(**lowered)
    refresh_completion(game=Game.objects.get(pk=game_id), player_ids=[player_id])


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
    overlapping ones sent at once cannot both pass the overlap check."""
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
