"""Keeping the Redis rank index true to PostgreSQL: full rebuilds and the drift repair.

The unlock path updates the index right after commit (ZADD GT). If that update is lost —
the process died between commit and update, or Redis was unreachable — `sync_recent`
finds the rows changed since the last sync and writes their true scores; it runs every
SYNC_INTERVAL from Celery beat and reads OVERLAP further back than the last run, so a
lost update is repaired within SYNC_INTERVAL + OVERLAP. If Redis restarts empty, the
READY key is gone: readers answer from SQL and a full rebuild is requested.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from leaderboards import index
from leaderboards.boards import KEY_PREFIX, Board
from leaderboards.models import ModerationAction, Season, SeasonStanding
from leaderboards.services import player_changes
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
        boards.append((Board.season(season_id), not region))
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
        changes.append((base, str(player_id), score))
        if per_region and region:
            changes.append((base.with_region(region), str(player_id), score))
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
        put(Board.season(season_id), player_id, *rest, per_region=not season_region)
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
