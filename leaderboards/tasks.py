"""Celery adapters for the leaderboards: thin, they load by id and call the service."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from redis.exceptions import RedisError

from infra import outbox
from infra.outbox import BoardMovesPayload, ReindexPayload, RiseItem
from leaderboards import index, live, services, sync
from leaderboards.boards import Rise
from tracker.models import Game

log = logging.getLogger("questboard.leaderboards")


@shared_task
def rebuild_index(game_id: str | None = None) -> int:
    store = index.redis_store()
    if store is None:
        return 0
    game = Game.objects.get(pk=game_id) if game_id else None
    return sync.rebuild(store, game)


@shared_task
def sync_index() -> int:
    store = index.redis_store()
    if store is None:
        return 0
    try:
        return sync.run_sync(store)
    except RedisError:
        log.warning("rank index sync skipped: Redis unreachable", exc_info=True)
        return 0


@shared_task
def close_due_seasons() -> int:
    return services.close_due_seasons()


# A batch of offline unlocks raises hundreds of players at once: tasks of this many rises
# keep each one short (its Redis calls included) and spread them over the workers.
RISES_PER_TASK = 200


def relay_board_moves(events: list[BoardMovesPayload]) -> None:
    """Outbox handler: hand the rises of a batch of unlocks to the workers, coalesced (one
    per player and board, the newest points: `live.coalesced`), RISES_PER_TASK to a task.
    The relay runs this kind at most once a tick (`relay_outbox --tick`), so a burst's
    moves share tasks and events. Raises when the broker is unreachable, so the events stay pending (and only
    these); a repeat after a partial publish sends some moves twice, which is harmless."""
    rises = [rise.item() for rise in live.coalesced(Rise.of(rise) for event in events for rise in event["rises"])]
    for start in range(0, len(rises), RISES_PER_TASK):
        chunk = rises[start : start + RISES_PER_TASK]
        # A summary for the task's logs and monitors: by default Celery writes a repr of
        # every rise, which cost as much of the relay's CPU as the publish itself.
        announce_board_moves.apply_async(args=[chunk], argsrepr=f"[<{len(chunk)} rises>]")


@shared_task(bind=True, acks_late=True, max_retries=None)
def announce_board_moves(self: Any, rises: list[RiseItem]) -> int:
    """leaderboard.updated on every board that moved, and rival alerts (recorded, then
    sent): `live.announce_rises`. While the channel layer is unreachable the task is
    retried with a growing pause; its alerts are recorded only with a successful send."""
    try:
        # `rise_item`: tasks the previous release queued carry rises as lists.
        return live.announce_rises([Rise.of(outbox.rise_item(rise)) for rise in rises])
    except Exception as error:
        if self.request.is_eager:
            raise
        raise self.retry(exc=error, countdown=min(2**self.request.retries, 60)) from error


def relay_reindex(events: list[ReindexPayload]) -> None:
    """Outbox handler: write moderated players' entries from the truth, in order with the
    unlocks before them (a late unlock event cannot undo a revocation). Raises RedisError."""
    sync.reindex_players({player_id for event in events for player_id in event["players"]}, strict=True)
