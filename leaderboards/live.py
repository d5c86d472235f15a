"""The live side of board moves, after the unlock's relay: leaderboard.updated to whoever
watches a board that moved, and rival alerts to the friends a player passed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from django.db import transaction

from infra import realtime
from leaderboards import selectors
from leaderboards.boards import Board, Rise, boards_of, uuid_of
from leaderboards.models import Season, season_entry_region
from stats.models import PlayerGameStats
from tracker.auth import EVERYONE, Caller, friend_ids, friend_ids_by_player, may_name, rows_for
from tracker.models import Notification, Player

# --- Rivals -------------------------------------------------------------------------------


def rival_messages(alerts: Iterable[Notification]) -> list[realtime.Message]:
    return [(realtime.player_group(n.player_id), "rival.passed", n.payload) for n in alerts]


def notify_rivals(
    *, player_id: Any, game_id: Any, old_points: int, new_points: int, friends: set[Any] | None = None
) -> list[Notification]:
    """Tell the friends a player just passed on a game's board (`friends`: their ids, when
    the caller has them already).

    A friend is passed when the player goes from at most the friend's points to strictly
    more. Players hidden from boards pass nobody, and neither does a player the friend may
    not name (a private one: `tracker.auth.may_name`), since the alert names them.
    """
    player = Player.objects.filter(pk=player_id, boards_hidden=False).first()
    if player is None or new_points <= old_points:
        return []
    friends = friend_ids(player) if friends is None else friends
    if not friends:
        return []
    passed = PlayerGameStats.objects.filter(
        game_id=game_id,
        player_id__in=friends,
        points__gte=old_points,
        points__lt=new_points,
        player__boards_hidden=False,
    ).select_related("game", "player")
    # Every one of them is a friend of the player, so `friends` is known without a query.
    passed = [
        row for row in passed if may_name(Caller(player=row.player), player.pk, player.privacy, friends={player.pk})
    ]
    return Notification.objects.bulk_create(
        [
            Notification(
                player_id=row.player_id,
                kind=Notification.Kind.RIVAL,
                payload={
                    "game_id": str(game_id),
                    "game_name": row.game.name,
                    "game_slug": row.game.slug,
                    "rival_id": str(player.pk),
                    "rival_username": player.username,
                    "rival_points": new_points,
                    "your_points": row.points,
                },
            )
            for row in passed
        ]
    )


# --- Live board events --------------------------------------------------------------------


def announce_rises(rises: Sequence[Rise]) -> int:
    """The slower live side of unlocks (a Celery task, after the relay): leaderboard.updated
    on every board that moved and rival alerts. Alerts are recorded in the same transaction
    as the send succeeds; a failed send raises and records none. Returns events sent."""
    with transaction.atomic():
        messages = board_moves(rises)
        risers = friend_ids_by_player({uuid_of(rise.player_id) for rise in rises if rise.kind == "game"})
        for rise in rises:
            if rise.kind == "game" and risers[uuid_of(rise.player_id)]:
                alerts = notify_rivals(
                    player_id=rise.player_id,
                    game_id=rise.scope,
                    old_points=rise.before,
                    new_points=rise.after,
                    friends=risers[uuid_of(rise.player_id)],
                )
                messages += rival_messages(alerts)
        realtime.broadcast(messages, strict=True)
    return len(messages)


class _Season(NamedTuple):
    game_id: Any
    region: str


NO_SEASON = _Season(None, "")  # a season deleted since its rise was recorded


def board_moves(rises: Iterable[Rise]) -> list[realtime.Message]:
    """leaderboard.updated events for players whose points rose: to everyone watching each
    board they are on (all regions and their region) and, for the all-regions board, to the
    player. rank_change = new rank - old rank (negative: moved up); None when newly ranked.
    Watchers may be anyone (`EVERYONE`), so a non-public player is anonymous there, id
    included; the player's own stream tells them their moves in full. Two queries and one
    index round trip, however many rises."""
    rises = list(rises)
    players = Player.objects.in_bulk([uuid_of(rise.player_id) for rise in rises])
    seasons = {
        str(pk): _Season(game_id, region)
        for pk, game_id, region in Season.objects.filter(
            pk__in=[uuid_of(rise.scope) for rise in rises if rise.kind == "season"]
        ).values_list("pk", "game_id", "region")
    }
    asked: list[tuple[Board, Rise, Player]] = []
    for rise in rises:
        player = players.get(uuid_of(rise.player_id))
        if player is None or player.boards_hidden or rise.after <= 0:
            continue
        region = player.region
        if rise.kind == "season":
            region = season_entry_region(seasons.get(rise.scope, NO_SEASON).region, region)
        asked += [(board, rise, player) for board in boards_of(rise.board, region)]
    found, _ = selectors.ask(
        lambda store: store.moves([(board, rise.player_id, rise.before) for board, rise, _ in asked])
    )
    messages: list[realtime.Message] = []
    for (board, rise, player), moved in zip(asked, found, strict=True):
        if moved is None:
            continue
        kind, scope, player_id, old, new = rise.kind, rise.scope, rise.player_id, rise.before, rise.after
        rank, above_before = moved
        old_rank = above_before if old > 0 else None  # counts this player too, now ahead of their old score
        game_id = scope if kind == "game" else seasons.get(scope, NO_SEASON).game_id if kind == "season" else None
        data = {
            "board": kind,
            "game_id": str(game_id) if game_id else None,
            "season_id": scope if kind == "season" else None,
            "region": board.region or None,
            "player_id": str(player_id),
            "username": player.username,
            "points": new,
            "new_rank": rank,
            "rank_change": rank - old_rank if old_rank else None,
        }
        [watched] = rows_for(EVERYONE, [data], {str(player_id): player.privacy})
        messages.append((realtime.board_group(kind, scope, board.region), "leaderboard.updated", watched))
        if not board.region:
            messages.append((realtime.player_group(player_id), "leaderboard.updated", data))
    return messages
