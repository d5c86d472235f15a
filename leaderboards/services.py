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
from leaderboards.boards import Board, Change, Member, boards_of
from leaderboards.models import ModerationAction, Season, SeasonResult, SeasonStanding
from stats.models import PlayerGameStats, PlayerTotals
from tracker import outbox, realtime
from tracker.auth import EVERYONE, Caller, friend_ids, friends_of, may_name, rows_for
from tracker.models import Notification, Player
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

    Returns (season_id, player_id, points, points_reached_at, points added, season region)
    per standing written.
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
    regions = {season.pk: season.region for season in seasons}
    return [(*row, deltas[(row[0], row[1])][0], regions[row[0]]) for row in written]


# --- Keeping the index in step ------------------------------------------------------------


def changes_for(
    games: Sequence[tuple], totals: Sequence[tuple], seasons: Sequence[tuple], players: dict[Any, Member]
) -> list[Change]:
    """Index changes for rows as an unlock left them, for players not hidden: `games`
    (player, game, points, reached), `totals` (player, points, reached) and `seasons`
    (season, player, points, reached, added, season region)."""
    changes: list[Change] = []

    def add(base: Board, player_id: Any, points: int, reached: Any, per_region: bool = True) -> None:
        member = players[player_id]
        if member.hidden:
            return
        for board in boards_of(base, member.region if per_region else ""):
            changes.append((board, str(player_id), index.score_of(points, reached)))

    for player_id, game_id, points, reached in games:
        add(Board.game(game_id), player_id, points, reached)
    for player_id, points, reached in totals:
        add(Board.everywhere(), player_id, points, reached)
    for season_id, player_id, points, reached, _, region in seasons:
        add(Board.season(season_id), player_id, points, reached, per_region=not region)
    return changes


def push_to_index(changes: list[Change], *, only_up: bool) -> None:
    """Write changes to the Redis index, after commit. A failure is logged, never raised:
    PostgreSQL has the truth, the outbox relay writes the same scores again, and
    `sync_index` repairs any drift (docs/leaderboards.md)."""
    store = index.redis_store()
    if store is None or not changes:
        return
    try:
        store.apply(changes, only_up=only_up)
    except RedisError:
        log.warning("rank index update failed; the relay and the periodic sync will repair it", exc_info=True)


def push_and_rank(changes: list[Change], asks: Sequence[tuple[Board, str]]) -> dict[tuple[Board, str], int | None]:
    """After an unlock committed: raise its scores in the index (ZADD GT) and read the
    asked players' ranks, in one Redis round trip. Ranks come from SQL when Redis is not
    configured, not built or unreachable."""
    store = index.redis_store()
    if store is not None:
        try:
            ranks = store.apply_and_rank(changes, asks)
            if ranks is not None:
                return ranks
        except RedisError:
            log.warning("rank index update failed; the relay and the periodic sync will repair it", exc_info=True)
    return {(board, player_id): selectors.rank_on(board, player_id) for board, player_id in asks}


def player_changes(player: Player) -> list[Change]:
    """Every index entry of one player, from the truth: their score on each board they are
    on, and removal from the boards of the regions they are not in."""
    pid = str(player.pk)
    hidden = player.boards_hidden or not player.is_active
    regions = [code for code, _ in Region.choices]
    changes: list[Change] = []

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
    """After moderation or an admin edit: the player's entries from the truth, right after
    commit and again through the outbox, in order behind every unlock relayed before it."""
    transaction.on_commit(lambda: reindex_players([player.pk]), robust=True)
    outbox.record("reindex", {"players": [str(player.pk)]})


def reindex_players(player_ids: Iterable[Any], *, strict: bool = False) -> None:
    for player in Player.objects.filter(pk__in=[uuid_of(pk) for pk in player_ids]):
        changes = player_changes(player)
        if strict:
            store = index.redis_store()
            if store is not None and changes:
                store.apply(changes, only_up=False)
        else:
            push_to_index(changes, only_up=False)


def push_rises(rises: Sequence[tuple[Rise, datetime]]) -> None:
    """Write the scores of risen players again, as the unlocks left them (the relay): on
    each player's boards as they stand now (region, hidden). ZADD GT never lowers a score,
    so a repeat or a late arrival is harmless. Raises RedisError."""
    store = index.redis_store()
    if store is None or not rises:
        return
    members = {
        pk: Member(region, hidden or not active)
        for pk, region, hidden, active in Player.objects.filter(
            pk__in={uuid_of(rise[2]) for rise, _ in rises}
        ).values_list("pk", "region", "boards_hidden", "is_active")
    }
    seasons = {uuid_of(rise[1]) for rise, _ in rises if rise[0] == "season"}
    regional = {str(pk) for pk in Season.objects.filter(pk__in=seasons).exclude(region="").values_list("pk", flat=True)}
    changes: list[Change] = []
    for (kind, scope, player_id, _, points), at in rises:
        member = members.get(uuid_of(player_id))
        if member is None or member.hidden:
            continue
        region = "" if kind == "season" and scope in regional else member.region
        changes += [(board, player_id, index.score_of(points, at)) for board in boards_of(Board(kind, scope), region)]
    if changes:
        store.apply(changes, only_up=True)


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
            .values_list(
                "player_id", "points", "achievement_count", "player__region", "player__username", "player__privacy"
            )
        )
        ranked = ranking.assign_ranks(
            [ranking.Entry(str(p), points) for p, points, *_ in rows], offset=0, ahead_of_first=0
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
                for position, ((player_id, points, count, region, _, _), entry) in enumerate(
                    zip(rows, ranked, strict=True)
                )
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
        # Season watchers may be anyone: the podium names only whom anyone may see.
        podium = rows_for(
            EVERYONE,
            [
                {"rank": entry.rank, "player_id": entry.player_id, "username": username, "points": entry.points}
                for entry, (*_, username, _) in zip(ranked[:10], rows[:10], strict=True)
            ],
            {str(player_id): privacy for player_id, *_, privacy in rows[:10]},
        )
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

Rise = tuple[str, str, str, int, int]  # (board kind, scope id, player id, points before, after)


def announce_rises(rises: Sequence[Rise]) -> int:
    """The slower live side of unlocks (a Celery task, after the relay): leaderboard.updated
    on every board that moved and rival alerts. Alerts are recorded in the same transaction
    as the send succeeds; a failed send raises and records none. Returns events sent."""
    with transaction.atomic():
        messages = board_moves(rises)
        risers = friends_of({uuid_of(player_id) for kind, _, player_id, _, _ in rises if kind == "game"})
        for kind, game_id, player_id, old, new in rises:
            if kind == "game" and risers[uuid_of(player_id)]:
                alerts = notify_rivals(
                    player_id=player_id,
                    game_id=game_id,
                    old_points=old,
                    new_points=new,
                    friends=risers[uuid_of(player_id)],
                )
                messages += rival_messages(alerts)
        realtime.broadcast(messages, strict=True)
    return len(messages)


def board_moves(rises: Iterable[Rise]) -> list[realtime.Message]:
    """leaderboard.updated events for players whose points rose: to everyone watching each
    board they are on (all regions and their region) and, for the all-regions board, to the
    player. rank_change = new rank - old rank (negative: moved up); None when newly ranked.
    Watchers may be anyone (`EVERYONE`), so a non-public player is anonymous there, id
    included; the player's own stream tells them their moves in full. Two queries and one
    index round trip, however many rises."""
    rises = list(rises)
    players = Player.objects.in_bulk([uuid_of(r[2]) for r in rises])
    seasons = {
        str(pk): (game_id, region)
        for pk, game_id, region in Season.objects.filter(
            pk__in=[uuid_of(r[1]) for r in rises if r[0] == "season"]
        ).values_list("pk", "game_id", "region")
    }
    asked: list[tuple[Board, Rise, Player]] = []
    for rise in rises:
        kind, scope, player_id, _, new = rise
        player = players.get(uuid_of(player_id))
        if player is None or player.boards_hidden or new <= 0:
            continue
        regional_season = kind == "season" and bool(seasons.get(scope, (None, ""))[1])
        regions = [player.region] if player.region and not regional_season else []
        base = Board(kind, scope)
        asked += [(board, rise, player) for board in [base] + [base.with_region(r) for r in regions]]
    found, _ = selectors.ask(lambda store: store.moves([(board, rise[2], rise[3]) for board, rise, _ in asked]))
    messages: list[realtime.Message] = []
    for (board, (kind, scope, player_id, old, new), player), moved in zip(asked, found, strict=True):
        if moved is None:
            continue
        rank, above_before = moved
        old_rank = above_before if old > 0 else None  # counts this player too, now ahead of their old score
        game_id = scope if kind == "game" else seasons.get(scope, (None, ""))[0] if kind == "season" else None
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


def uuid_of(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
