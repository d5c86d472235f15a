"""The live side of board moves, after the unlock's relay: leaderboard.updated to whoever
watches a board that moved, and rival alerts to the friends a player passed."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from django.db import transaction

from infra import realtime
from leaderboards import selectors
from leaderboards.boards import Board, Rise, boards_of, uuid_of
from leaderboards.models import Season, season_entry_region
from stats.models import PlayerGameStats
from tracker.auth import EVERYONE, Caller, friend_ids_by_player, may_name, rows_for
from tracker.models import Notification, Player

# --- Rivals -------------------------------------------------------------------------------


def rival_messages(alerts: Iterable[Notification]) -> list[realtime.Message]:
    return [(realtime.player_group(n.player_id), "rival.passed", n.payload) for n in alerts]


def notify_rivals(rises: Sequence[Rise], players: Mapping[uuid.UUID, Player]) -> list[Notification]:
    """Tell the friends each rise passed on a game's board, for a whole batch of rises in
    three queries (friendships, the passed friends' rows, the insert) whatever its size.
    `players`: the risers by id (UUID).

    A friend is passed when the player goes from at most the friend's points to strictly
    more. Players hidden from boards pass nobody and are passed by nobody, and a player
    passes no friend who may not name them (a private one: `tracker.auth.may_name`), since
    the alert names them. Each (friend, riser, game) is alerted once per batch.
    """
    rises = [
        rise
        for rise in rises
        if rise.kind == "game"
        and rise.after > rise.before
        and (riser := players.get(uuid_of(rise.player_id))) is not None
        and not riser.boards_hidden
    ]
    if not rises:
        return []
    friends = friend_ids_by_player({uuid_of(rise.player_id) for rise in rises})
    everyone = set().union(*friends.values())
    if not everyone:
        return []
    # One superset query: every friend's row on every risen game within the batch's widest
    # window; each rise then keeps the rows of its own friends, game and window.
    rows = {
        (row.game_id, row.player_id): row
        for row in PlayerGameStats.objects.filter(
            game_id__in={uuid_of(rise.scope) for rise in rises},
            player_id__in=everyone,
            points__gte=min(rise.before for rise in rises),
            points__lt=max(rise.after for rise in rises),
            player__boards_hidden=False,
        ).select_related("game", "player")
    }
    alerts: dict[tuple[Any, Any, Any], Notification] = {}
    for rise in rises:
        riser = players[uuid_of(rise.player_id)]
        game_id = uuid_of(rise.scope)
        for friend in friends[riser.pk]:
            row = rows.get((game_id, friend))
            if row is None or not rise.before <= row.points < rise.after:
                continue
            # Every one of them is a friend of the riser, so `friends` is known without a query.
            if not may_name(Caller(player=row.player), riser.pk, riser.privacy, friends={riser.pk}):
                continue
            alerts[(row.player_id, riser.pk, game_id)] = Notification(
                player_id=row.player_id,
                kind=Notification.Kind.RIVAL,
                payload={
                    "game_id": str(rise.scope),
                    "game_name": row.game.name,
                    "game_slug": row.game.slug,
                    "rival_id": str(riser.pk),
                    "rival_username": riser.username,
                    "rival_points": rise.after,
                    "your_points": row.points,
                },
            )
    return Notification.objects.bulk_create(alerts.values())


# --- Live board events --------------------------------------------------------------------


def coalesced(rises: Iterable[Rise]) -> list[Rise]:
    """One rise per player and board: from the points before the first of them to the
    points after the last (the newest state), in the order each first appeared. A burst of
    unlocks by one player then announces one move per board, not one per unlock."""
    merged: dict[tuple[str, str, str], Rise] = {}
    for rise in rises:
        key = (rise.kind, rise.scope, str(rise.player_id))
        seen = merged.get(key)
        merged[key] = (
            rise
            if seen is None
            else seen._replace(before=min(seen.before, rise.before), after=max(seen.after, rise.after))
        )
    return list(merged.values())


def announce_rises(rises: Sequence[Rise]) -> int:
    """The slower live side of unlocks (a Celery task, after the relay): leaderboard.updated
    on every board that moved and rival alerts, for the rises coalesced per player and
    board. Alerts are recorded in the same transaction as the send succeeds; a failed send
    raises and records none. Returns events sent."""
    rises = coalesced(rises)
    players = Player.objects.in_bulk({uuid_of(rise.player_id) for rise in rises})
    with transaction.atomic():
        messages = board_moves(rises, players)
        messages += rival_messages(notify_rivals(rises, players))
        realtime.broadcast(messages, strict=True)
    return len(messages)


class _Season(NamedTuple):
    game_id: Any
    region: str


NO_SEASON = _Season(None, "")  # a season deleted since its rise was recorded


def board_moves(rises: Iterable[Rise], players: Mapping[uuid.UUID, Player] | None = None) -> list[realtime.Message]:
    """leaderboard.updated events for players whose points rose: to everyone watching each
    board they are on (all regions and their region) and, for the all-regions board, to the
    player. rank_change = new rank - old rank (negative: moved up); None when newly ranked.
    Watchers may be anyone (`EVERYONE`), so a non-public player is anonymous there, id
    included; the player's own stream tells them their moves in full. Two queries and one
    index round trip, however many rises."""
    rises = list(rises)
    if players is None:
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
