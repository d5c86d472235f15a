"""Keeping the Redis rank index true to PostgreSQL: the unlock's index update and rank,
moderated players' entries, full rebuilds and the drift repair.

The unlock path updates the index right after commit (ZADD GT). If that update is lost —
the process died between commit and update, or Redis was unreachable — `sync_recent`
finds the rows changed since the last sync and writes their true scores; it runs every
SYNC_INTERVAL from Celery beat and reads OVERLAP further back than the last run, so a
lost update is repaired within SYNC_INTERVAL + OVERLAP. If Redis restarts empty, the
READY key is gone: readers answer from SQL and the next sync pass rebuilds every board.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from redis.exceptions import RedisError

from infra import breaker, outbox
from infra.errors import is_database_unavailable
from infra.outbox import ReindexPayload
from leaderboards import index, selectors
from leaderboards.boards import KEY_PREFIX, Board, Change, Member, Moves, Rise, Score, boards_of, uuid_of
from leaderboards.models import (
    ModerationAction,
    Season,
    SeasonStanding,
    season_entry_region,
    season_has_region_boards,
)
from stats.models import PlayerGameStats, PlayerTotals
from tracker.models import Game, Player
from tracker.regions import Region

log = logging.getLogger("questboard.leaderboards")

SYNC_INTERVAL = timedelta(seconds=60)
OVERLAP = timedelta(seconds=90)
WATERMARK_KEY = f"{KEY_PREFIX}:synced-from"
CHUNK = 5000


def base_boards(game: Game | None = None) -> list[tuple[Board, bool]]:
    """Every all-regions board (with whether it has per-region boards), or one game's."""
    if game is not None:
        return [(Board.game(game.pk), True)]
    boards = [(Board.game(pk), True) for pk in Game.objects.values_list("pk", flat=True)]
    boards.append((Board.everywhere(), True))
    for season_id, region in Season.objects.filter(closed_at__isnull=True).values_list("pk", "region"):
        boards.append((Board.season(season_id), season_has_region_boards(region)))
    return boards


def rebuild(store: index.RedisStore, game: Game | None = None) -> int:
    """Rebuild boards from PostgreSQL: each is filled under a scratch key and swapped in
    atomically, so readers never see a half-built board. Returns entries written."""
    written = 0
    for base, per_region in base_boards(game):
        written += rebuild_board(store, base, per_region)
    if game is None:
        store.mark_ready()
        store.client.set(WATERMARK_KEY, timezone.now().isoformat())
    return written


def rebuild_board(store: index.RedisStore, base: Board, per_region: bool) -> int:
    boards = [base] + ([base.with_region(code) for code, _ in Region.choices] if per_region else [])
    scratch = {board.key: f"{board.key}:rebuilding" for board in boards}
    client = store.client
    client.delete(*scratch.values())
    filled: set[str] = set()
    written = 0
    rows = base.rows().values_list("player_id", "points", "points_reached_at", "player__region")
    # Members are sent CHUNK rows at a time, one variadic ZADD per board in one pipeline:
    # a command per member made a 1,000,000-player rebuild take minutes.
    members: dict[str, dict[str, int]] = defaultdict(dict)

    def flush() -> None:
        pipe = client.pipeline(transaction=False)
        for key, mapping in members.items():
            pipe.zadd(scratch[key], mapping)
            filled.add(key)
        pipe.execute()
        members.clear()

    for player_id, points, reached, region in rows.iterator(chunk_size=CHUNK):
        score = index.ranking.encode(points, reached)
        members[base.key][str(player_id)] = score
        if per_region and region:
            members[base.with_region(region).key][str(player_id)] = score
        written += 1
        if written % CHUNK == 0:
            flush()
    flush()
    for board in boards:
        if board.key in filled:
            client.rename(scratch[board.key], board.key)
        else:
            client.delete(board.key)
    return written


def _recent(rows: QuerySet, since: datetime) -> Iterator[Any]:
    return rows.filter(updated_at__gte=since).iterator(chunk_size=CHUNK)


def sync_recent(store: index.RedisStore, since: datetime) -> int:
    """Write the true score of every row changed since `since`. Returns rows synced."""
    changes: list[tuple[Board, str, int | None]] = []
    synced = 0

    def flush() -> None:
        store.apply(changes, only_up=False)
        changes.clear()

    def put(
        base: Board,
        player_id: Any,
        points: int,
        reached: Any,
        region: str,
        hidden: bool,
        active: bool,
        per_region: bool,
    ) -> None:
        nonlocal synced
        score = None if hidden or not active else index.score_of(points, reached)
        changes.append(Change(base, str(player_id), score))
        if per_region and region:
            changes.append(Change(base.with_region(region), str(player_id), score))
        synced += 1
        if len(changes) >= CHUNK:
            flush()

    fields = ("points", "points_reached_at", "player__region", "player__boards_hidden", "player__is_active")
    for game_id, player_id, *rest in _recent(
        PlayerGameStats.objects.values_list("game_id", "player_id", *fields), since
    ):
        put(Board.game(game_id), player_id, *rest, per_region=True)
    for player_id, *rest in _recent(PlayerTotals.objects.values_list("player_id", *fields), since):
        put(Board.everywhere(), player_id, *rest, per_region=True)
    standings = SeasonStanding.objects.filter(season__closed_at__isnull=True).values_list(
        "season_id", "season__region", "player_id", *fields
    )
    for season_id, season_region, player_id, *rest in _recent(standings, since):
        put(Board.season(season_id), player_id, *rest, per_region=season_has_region_boards(season_region))
    flush()
    # Hides and restores change no stats row: replay the players moderated since.
    moderated = ModerationAction.objects.filter(
        created__gte=since, kind__in=[ModerationAction.Kind.HIDE, ModerationAction.Kind.RESTORE]
    ).values_list("player_id", flat=True)
    for player in Player.objects.filter(pk__in=set(moderated)):
        store.apply(player_changes(player), only_up=False)
    return synced


def run_sync(store: index.RedisStore, now: datetime | None = None) -> int:
    """One drift-repair pass; a full rebuild instead if the index is not built."""
    now = now or timezone.now()
    if not store.is_ready():
        return rebuild(store)
    raw = store.client.get(WATERMARK_KEY)
    last = datetime.fromisoformat(raw.decode()) if raw else now - timedelta(days=1)
    synced = sync_recent(store, last - OVERLAP)
    store.client.set(WATERMARK_KEY, now.isoformat())
    return synced


# --- Keeping the index in step ------------------------------------------------------------


def index_changes(moves: Moves, members: Mapping[Any, Member]) -> list[Change]:
    """The index entries of what a write moved: each score on its all-regions board and on
    its player's region's board (none for a regional season: `season_entry_region`);
    nothing for a hidden or unknown player. `members` are keyed by player id (UUID)."""
    changes: list[Change] = []
    for score in moves.scores:
        member = members.get(uuid_of(score.player_id))
        if member is None or member.hidden:
            continue
        region = member.region
        if score.board.kind == "season":
            region = season_entry_region(moves.season_regions.get(score.board.scope, ""), region)
        value = index.score_of(score.points, score.reached_at)
        changes += [Change(board, score.player_id, value) for board in boards_of(score.board, region)]
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
    except breaker.Open:
        return  # Redis is left alone for a while, which the breaker logged once
    except RedisError as error:
        log.warning(
            "rank index update failed (%s); the relay and the periodic sync will repair it",
            error,
            exc_info=not breaker.is_outage(error),  # an outage is one line, a bug a traceback
        )


def push_and_rank(
    changes: list[Change], asks: Sequence[tuple[Board, str]]
) -> dict[tuple[Board, str], int | None] | None:
    """After an unlock committed, outside any transaction: raise its scores in the index
    (ZADD GT) and read the asked players' ranks, in one Redis round trip. Ranks come from
    SQL when Redis is not configured, not built or unreachable. A rank is None for a player
    not on that board.

    Never raises: the unlock is committed, and its caller must answer so whatever fails now.
    None when the ranks could not be read (PostgreSQL failing too, or anything else): the
    caller then says the rank is unavailable. An index write that failed is made again by
    the relay and repaired by the periodic sync, as always."""
    try:
        return _push_and_rank(changes, asks)
    except Exception as error:  # whatever it is, the unlock stands: see above
        log.warning(
            "an unlock committed but its rank could not be read after: %s",
            str(error).strip().split("\n", 1)[0],
            # A database that cannot serve is expected now and then (one line each); anything
            # else is a bug, and its traceback is wanted.
            exc_info=not is_database_unavailable(error),
        )
        return None


def _push_and_rank(changes: list[Change], asks: Sequence[tuple[Board, str]]) -> dict[tuple[Board, str], int | None]:
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
        changes.append(Change(base, pid, score))
        if per_region:
            for region in regions:
                changes.append(Change(base.with_region(region), pid, score if region == player.region else None))

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
        put(Board.season(season_id), points, reached, per_region=season_has_region_boards(region))
    return changes


def rebuild_season_board(season: Season) -> None:
    """Rebuild one season's boards in the index from its standings (after a recount)."""
    store = index.redis_store()
    if store is None:
        return
    try:
        rebuild_board(store, Board.season(season.pk), per_region=season_has_region_boards(season.region))
    except RedisError:
        log.warning("could not rebuild the season's board; the nightly rebuild will", exc_info=True)


def reindex_player_after_commit(player: Player) -> None:
    """After moderation or an admin edit: the player's entries from the truth, right after
    commit and again through the outbox, in order behind every unlock relayed before it."""
    transaction.on_commit(lambda: reindex_players([player.pk]), robust=True)
    outbox.record("reindex", ReindexPayload(players=[str(player.pk)]))


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
            pk__in={uuid_of(rise.player_id) for rise, _ in rises}
        ).values_list("pk", "region", "boards_hidden", "is_active")
    }
    seasons = {uuid_of(rise.scope) for rise, _ in rises if rise.kind == "season"}
    season_regions = {
        str(pk): region for pk, region in Season.objects.filter(pk__in=seasons).values_list("pk", "region")
    }
    scores = [Score(rise.board, str(rise.player_id), rise.after, at) for rise, at in rises]
    changes = index_changes(Moves(scores, season_regions), members)
    if changes:
        store.apply(changes, only_up=True)
