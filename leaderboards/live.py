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
from tracker import feedhead
from tracker.auth import EVERYONE, Caller, friend_ids_by_player, may_name, rows_for
from tracker.models import Game, Notification, Player

# --- Rivals -------------------------------------------------------------------------------


def rival_messages(alerts: Iterable[Notification]) -> list[realtime.Message]:
    return [(realtime.player_group(n.player_id), "rival.passed", n.payload) for n in alerts]


def notify_rivals(rises: Sequence[Rise], players: Mapping[uuid.UUID, Player]) -> list[Notification]:
    """Tell each friend a rise passed on a game's board, in two queries (the friends and
    games named, then the insert) whatever the batch's size. `players`: the risers by id.

    Who was passed is decided by the unlock statement at the moment of the rise
    (`Rise.passed`: the player went from at most the friend's points to strictly more), so
    an alert sent late, after a broker outage, says what was true when it happened, and
    each pass is one alert. Whether it may be sent is decided now: players hidden from
    boards pass nobody and are passed by nobody, and a player passes no friend who may
    not name them (a private one: `tracker.auth.may_name`), since the alert names them.
    """
    rises = decided(rises)
    passes = [
        (rise, riser, passed)
        for rise in rises
        if rise.kind == "game"
        and (riser := players.get(uuid_of(rise.player_id))) is not None
        and not riser.boards_hidden
        for passed in rise.passed
    ]
    if not passes:
        return []
    friends = Player.objects.in_bulk({uuid_of(passed["player_id"]) for _, _, passed in passes})
    games = Game.objects.in_bulk({uuid_of(rise.scope) for rise, _, _ in passes})
    alerts = []
    for rise, riser, passed in passes:
        friend, game = friends.get(uuid_of(passed["player_id"])), games.get(uuid_of(rise.scope))
        if friend is None or game is None or friend.boards_hidden:
            continue
        # The riser is the friend's friend, so `friends` is known without a query.
        if not may_name(Caller(player=friend), riser.pk, riser.privacy, friends={riser.pk}):
            continue
        alerts.append(
            Notification(
                player_id=friend.pk,
                kind=Notification.Kind.RIVAL,
                payload={
                    "game_id": str(game.pk),
                    "game_name": game.name,
                    "game_slug": game.slug,
                    "rival_id": str(riser.pk),
                    "rival_username": riser.username,
                    "rival_points": passed["rival_points"],
                    "your_points": passed["points"],
                },
            )
        )
    return Notification.objects.bulk_create(alerts)


def decided(rises: Sequence[Rise]) -> list[Rise]:
    """`rises` with the friends each passed. Those the previous release recorded carry no
    `passed`: for one release they are decided now, against the friends' current points
    (docs/outbox.md, "Upgrading"), in one query."""
    undecided = [rise for rise in rises if rise.passed is None and rise.kind == "game" and rise.after > rise.before]
    if not undecided:
        return [rise._replace(passed=rise.passed or ()) for rise in rises]
    friends = friend_ids_by_player({uuid_of(rise.player_id) for rise in undecided})
    points = {
        (str(game_id), friend): had
        for game_id, friend, had in PlayerGameStats.objects.filter(
            game_id__in={uuid_of(rise.scope) for rise in undecided},
            player_id__in=set().union(*friends.values()),
        ).values_list("game_id", "player_id", "points")
    }
    return [
        rise
        if rise.passed is not None
        else rise._replace(
            passed=tuple(
                {"player_id": str(friend), "points": had, "rival_points": rise.after}
                for friend in friends.get(uuid_of(rise.player_id), ())
                if (had := points.get((rise.scope, friend))) is not None and rise.before <= had < rise.after
            )
        )
        for rise in rises
    ]


# --- Live board events --------------------------------------------------------------------


def coalesced(rises: Iterable[Rise]) -> list[Rise]:
    """One rise per player and board: from the points before the first of them to the
    points after the last (the newest state), in the order each first appeared, with every
    friend each of them passed. A burst of unlocks by one player then announces one move
    per board, not one per unlock, and still each rival alert."""
    merged: dict[tuple[str, str, str], Rise] = {}
    for rise in rises:
        key = (rise.kind, rise.scope, str(rise.player_id))
        seen = merged.get(key)
        merged[key] = (
            rise
            if seen is None
            else seen._replace(
                before=min(seen.before, rise.before),
                after=max(seen.after, rise.after),
                passed=None if seen.passed is None or rise.passed is None else seen.passed + rise.passed,
            )
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
        alerts = notify_rivals(rises, players)
        messages += rival_messages(alerts)
        feedhead.changed_on_commit({alert.player_id for alert in alerts})  # a pass is in their feed
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
