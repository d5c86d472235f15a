"""Writes that move boards: season points, moderation, season close, and keeping the rank
index in step with PostgreSQL (the truth)."""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from redis.exceptions import RedisError

from leaderboards import index, ranking, selectors
from leaderboards.boards import Board, boards_of
from leaderboards.models import ModerationAction, Season, SeasonResult, SeasonStanding
from stats.models import PlayerGameStats, PlayerTotals
from stats.services import NewTotals
from tracker import realtime
from tracker.auth import friend_ids
from tracker.models import Notification, Player, Privacy
from tracker.regions import Region
from tracker.sql import add_counters

log = logging.getLogger("questboard.leaderboards")

# Seasons close this long after their end, so that an unlock transaction that began
# before the end has certainly committed its season points.
CLOSE_GRACE = timedelta(seconds=30)


# --- Season points, inside the unlock (or revocation) transaction -------------------------


def apply_season_points(items: Sequence[tuple[Player, Any, datetime]], *, sign: int, at: datetime) -> list[tuple]:
    """Add (sign=1) or remove (sign=-1) the points of unlocks to every open season they
    count in. `items` are (player, achievement, unlocked_at). An unlock counts in a season
    of its game when unlocked_at is inside [starts_at, ends_at), the player is of the
    season's region (if it has one) and the achievement is among the season's chosen ones
    (if it has any). Closed seasons are archived and never change.

    Returns (season_id, player_id, points, points_reached_at, points added) per standing
    written.
    """
    if not items:
        return []
    times = [unlocked_at for *_, unlocked_at in items]
    seasons = list(
        Season.objects.filter(
            game_id__in={achievement.game_id for _, achievement, _ in items},
            closed_at__isnull=True,
            starts_at__lte=max(times),
            ends_at__gt=min(times),
        )
    )
    if not seasons:
        return []
    chosen: dict[Any, set[Any]] = defaultdict(set)
    for season_id, achievement_id in Season.achievements.through.objects.filter(season__in=seasons).values_list(
        "season_id", "achievement_id"
    ):
        chosen[season_id].add(achievement_id)

    deltas: dict[tuple[Any, Any], list[int]] = defaultdict(lambda: [0, 0])
    for player, achievement, unlocked_at in items:
        for season in seasons:
            if (
                season.game_id == achievement.game_id
                and season.starts_at <= unlocked_at < season.ends_at
                and (not season.region or season.region == player.region)
                and (season.pk not in chosen or achievement.pk in chosen[season.pk])
            ):
                bucket = deltas[(season.pk, player.pk)]
                bucket[0] += sign * achievement.points
                bucket[1] += sign
    if not deltas:
        return []
    rows = [(season_id, player_id, points, count) for (season_id, player_id), (points, count) in sorted(deltas.items())]
    written = add_counters(SeasonStanding, keys=("season", "player"), rows=rows, at=at.replace(microsecond=0))
    return [(*row, deltas[(row[0], row[1])][0]) for row in written]


# --- Keeping the index in step ------------------------------------------------------------


def changes_for(
    new: NewTotals, season_rows: Sequence[tuple], players: dict[Any, Player]
) -> list[tuple[Board, str, int | None]]:
    """Index changes for rows as they stand after an unlock, for players not hidden."""
    changes: list[tuple[Board, str, int | None]] = []

    def add(base: Board, player_id: Any, points: int, reached: Any, per_region: bool = True) -> None:
        player = players[player_id]
        if player.boards_hidden:
            return
        region = player.region if per_region else ""
        for board in boards_of(base, region):
            changes.append((board, str(player_id), index.score_of(points, reached)))

    for player_id, game_id, points, reached in new.games:
        add(Board.game(game_id), player_id, points, reached)
    for player_id, points, reached in new.players:
        add(Board.everywhere(), player_id, points, reached)
    if season_rows:
        regional = dict(Season.objects.filter(pk__in={row[0] for row in season_rows}).values_list("pk", "region"))
        for season_id, player_id, points, reached, _ in season_rows:
            add(Board.season(season_id), player_id, points, reached, per_region=not regional.get(season_id))
    return changes


def push_to_index(changes: list[tuple[Board, str, int | None]], *, only_up: bool) -> None:
    """Write changes to the Redis index, after commit. A failure is logged, never raised:
    PostgreSQL has the truth and `sync_index` repairs the drift (docs/leaderboards.md)."""
    store = index.redis_store()
    if store is None or not changes:
        return
    try:
        store.apply(changes, only_up=only_up)
    except RedisError:
        log.warning("rank index update failed; the periodic sync will repair it", exc_info=True)


def player_changes(player: Player) -> list[tuple[Board, str, int | None]]:
    """Every index entry of one player, from the truth: their score on each board they are
    on, and removal from the boards of the regions they are not in."""
    pid = str(player.pk)
    hidden = player.boards_hidden or not player.is_active
    regions = [code for code, _ in Region.choices]
    changes: list[tuple[Board, str, int | None]] = []

    def put(base: Board, points: int, reached: Any, per_region: bool = True) -> None:
        score = None if hidden else index.score_of(points, reached)
        changes.append((base, pid, score))
        if per_region:
            for region in regions:
                changes.append((base.with_region(region), pid, score if region == player.region else None))

    for game_id, points, reached in PlayerGameStats.objects.filter(player=player).values_list(
        "game_id", "points", "points_reached_at"
    ):
        put(Board.game(game_id), points, reached)
    totals = PlayerTotals.objects.filter(player=player).values_list("points", "points_reached_at").first()
    if totals:
        put(Board.everywhere(), *totals)
    for season_id, region, points, reached in SeasonStanding.objects.filter(
        player=player, season__closed_at__isnull=True
    ).values_list("season_id", "season__region", "points", "points_reached_at"):
        put(Board.season(season_id), points, reached, per_region=not region)
    return changes


def rebuild_season_board(season: Season) -> None:
    """Rebuild one season's boards in the index from its standings (after a recount)."""
    from leaderboards import sync

    store = index.redis_store()
    if store is None:
        return
    try:
        sync.rebuild_board(store, Board.season(season.pk), per_region=not season.region)
    except RedisError:
        log.warning("could not rebuild the season's board; the nightly rebuild will", exc_info=True)


def reindex_player_after_commit(player: Player) -> None:
    transaction.on_commit(lambda: push_to_index(player_changes(Player.objects.get(pk=player.pk)), only_up=False))


# --- Moderation ---------------------------------------------------------------------------


def record_moderation(
    *, kind: str, actor: Player | None, player: Player | None = None, reason: str = "", **details: Any
) -> ModerationAction:
    season = details.pop("season", None)
    return ModerationAction.objects.create(
        kind=kind, actor=actor, player=player, season=season, reason=reason, details=details
    )


def hide_player(*, player: Player, actor: Player | None, reason: str) -> None:
    """Take a player off every board (a cheater, say). Their unlocks stay recorded."""
    with transaction.atomic():
        Player.objects.filter(pk=player.pk).update(boards_hidden=True)
        player.boards_hidden = True
        record_moderation(kind=ModerationAction.Kind.HIDE, actor=actor, player=player, reason=reason)
        reindex_player_after_commit(player)


def restore_player(*, player: Player, actor: Player | None, reason: str) -> None:
    with transaction.atomic():
        Player.objects.filter(pk=player.pk).update(boards_hidden=False)
        player.boards_hidden = False
        record_moderation(kind=ModerationAction.Kind.RESTORE, actor=actor, player=player, reason=reason)
        reindex_player_after_commit(player)


# --- Seasons ------------------------------------------------------------------------------


def close_season(*, season: Season, actor: Player | None = None, now: datetime | None = None) -> bool:
    """Archive a season's final standings for good and close it. Closing early (an admin's
    "close now") also ends its window now. Returns False if it was already closed."""
    now = now or timezone.now()
    with transaction.atomic():
        season = Season.objects.select_for_update().get(pk=season.pk)
        if season.closed_at is not None:
            return False
        if season.ends_at > now:
            season.ends_at = max(now, season.starts_at + timedelta(microseconds=1))
        board = Board.season(season.pk)
        rows = list(
            board.rows()
            .order_by(*index.ORDER)
            .values_list("player_id", "points", "achievement_count", "player__region")
        )
        ranked = ranking.assign_ranks(
            [ranking.Entry(str(p), points) for p, points, _, _ in rows], offset=0, ahead_of_first=0
        )
        SeasonResult.objects.bulk_create(
            [
                SeasonResult(
                    season=season,
                    player_id=player_id,
                    rank=entry.rank,
                    points=points,
                    achievement_count=count,
                    region=region,
                    position=position,
                )
                for position, ((player_id, points, count, region), entry) in enumerate(zip(rows, ranked, strict=True))
            ],
            batch_size=5000,
        )
        season.closed_at = now
        season.save(update_fields=["ends_at", "closed_at"])
        record_moderation(
            kind=ModerationAction.Kind.CLOSE_SEASON, actor=actor, season=season, players=len(rows), automatic=not actor
        )
        keys = [board] + [board.with_region(code) for code, _ in Region.choices]
        transaction.on_commit(lambda: _drop_boards(keys))
        podium = [{"rank": entry.rank, "player_id": entry.player_id, "points": entry.points} for entry in ranked[:10]]
        realtime.broadcast_on_commit(
            [
                (
                    realtime.season_group(season.pk),
                    "season.closed",
                    {
                        "season_id": str(season.pk),
                        "game_id": str(season.game_id),
                        "name": season.name,
                        "closed_at": now.isoformat(),
                        "players": len(rows),
                        "top": podium,
                    },
                )
            ]
        )
    return True


def _drop_boards(boards: Iterable[Board]) -> None:
    store = index.redis_store()
    if store is None:
        return
    try:
        store.client.delete(*[board.key for board in boards])
    except RedisError:
        log.warning("could not drop closed season boards", exc_info=True)


def close_due_seasons(now: datetime | None = None) -> int:
    now = now or timezone.now()
    closed = 0
    for season in Season.objects.due_to_close(now - CLOSE_GRACE):
        closed += close_season(season=season, now=now)
    return closed


# --- Rivals -------------------------------------------------------------------------------


def rival_messages(alerts: Iterable[Notification]) -> list[realtime.Message]:
    return [(realtime.player_group(n.player_id), "rival.passed", n.payload) for n in alerts]


def notify_rivals(*, player_id: Any, game_id: Any, old_points: int, new_points: int) -> list[Notification]:
    """Tell the friends a player just passed on a game's board.

    A friend is passed when the player goes from at most the friend's points to strictly
    more. Players hidden from boards pass nobody.
    """
    player = Player.objects.filter(pk=player_id, boards_hidden=False).first()
    if player is None or new_points <= old_points:
        return []
    friends = friend_ids(player)
    if not friends:
        return []
    passed = PlayerGameStats.objects.filter(
        game_id=game_id,
        player_id__in=friends,
        points__gte=old_points,
        points__lt=new_points,
        player__boards_hidden=False,
    ).select_related("game")
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

Rise = tuple[str, str, str, int, int]  # (board kind, scope id, player id, points before, after)


def board_moves(rises: Iterable[Rise]) -> list[realtime.Message]:
    """leaderboard.updated events for players whose points rose: to everyone watching each
    board they are on (all regions and their region) and, for the all-regions board, to the
    player. rank_change = new rank - old rank (negative: moved up); None when newly ranked.
    Names of non-public players are masked, since watchers may be anyone."""
    rises = list(rises)
    players = Player.objects.in_bulk([uuid_of(r[2]) for r in rises])
    season_games = dict(
        Season.objects.filter(pk__in=[uuid_of(r[1]) for r in rises if r[0] == "season"]).values_list("pk", "game_id")
    )
    messages: list[realtime.Message] = []
    for kind, scope, player_id, old, new in rises:
        player = players.get(uuid_of(player_id))
        if player is None or player.boards_hidden or new <= 0:
            continue
        base = Board(kind, scope)
        regions = [player.region] if player.region and not (kind == "season" and _regional(scope)) else []
        for board in [base] + [base.with_region(r) for r in regions]:
            mine = selectors.standing(board, player_id)
            if mine is None:
                continue
            old_rank = None
            if old > 0:
                above, _ = selectors.ask(lambda store, b=board, o=old: store.count_above(b, o))
                old_rank = above  # counts this player too, now ahead of their old score
            game_id = scope if kind == "game" else season_games.get(uuid_of(scope)) if kind == "season" else None
            data = {
                "board": kind,
                "game_id": str(game_id) if game_id else None,
                "season_id": scope if kind == "season" else None,
                "region": board.region or None,
                "player_id": str(player_id),
                "username": player.username if player.privacy == Privacy.PUBLIC else selectors.ANONYMOUS_NAME,
                "points": new,
                "new_rank": mine.rank,
                "rank_change": mine.rank - old_rank if old_rank else None,
            }
            messages.append((realtime.board_group(kind, scope, board.region), "leaderboard.updated", data))
            if not board.region:
                messages.append((realtime.player_group(player_id), "leaderboard.updated", data))
    return messages


def _regional(season_id: str) -> bool:
    return Season.objects.filter(pk=uuid_of(season_id)).exclude(region="").exists()


def uuid_of(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
