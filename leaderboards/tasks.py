"""Celery adapters for the leaderboards: thin, they load by id and call the service."""

from __future__ import annotations

import logging

from celery import shared_task
from redis.exceptions import RedisError

from leaderboards import index, services, sync
from tracker.models import Game

log = logging.getLogger("questboard.leaderboards")

REBUILD_LOCK = f"{sync.KEY_PREFIX}:rebuild-requested"


@shared_task
def rebuild_index(game_id: str | None = None) -> int:
    store = index.redis_store()
    if store is None:
        return 0
    game = Game.objects.get(pk=game_id) if game_id else None
    return sync.rebuild(store, game)


def request_rebuild() -> None:
    """Ask for one full rebuild soon; repeated asks within 5 minutes are folded into it."""
    store = index.redis_store()
    if store is not None and store.client.set(REBUILD_LOCK, "1", nx=True, ex=300):
        try:
            rebuild_index.delay()
        except Exception:
            store.client.delete(REBUILD_LOCK)
            log.warning("could not enqueue an index rebuild", exc_info=True)


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
