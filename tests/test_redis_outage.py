"""A real Redis that stops answering or goes away: unlocks still commit within a bounded
time, and once Redis is back the ranks it holds are the ones PostgreSQL says.

Each test points the cache, the rank index and the channel layer at a Redis of its own
(tests/servers.OwnRedis) and pauses or stops that one, never the machine's. After the
first failure the process leaves that Redis alone (infra/breaker.py) until a ping finds it
answering: `asked_again` waits for that. tests/test_faults_redis.py measures what a silent
Redis costs each request.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from infra import breaker, outbox
from leaderboards import index
from leaderboards import tasks as leaderboard_tasks
from leaderboards.boards import Board
from tests.conftest import achievement, make_player
from tests.helpers import unlock
from tests.servers import OwnRedis
from tracker.models import Game, OutboxEvent

pytestmark = pytest.mark.django_db(transaction=True)

# The most one request may spend on an unanswering Redis: a handful of calls, each bounded
# by REDIS_TIMEOUT (0.5 s). Before the timeouts, one unlock waited about 58 s.
BOUNDED_SECONDS = 5.0
# The breaker's open period here, shorter than the default so the tests wait less for it.
BREAKER_SECONDS = 1.0


@pytest.fixture
def on_own_redis(own_redis: OwnRedis, rank_index: Any) -> Iterator[OwnRedis]:
    """Cache, rank index and channel layer all on the test's own Redis, index built
    (`rank_index` turns the index on for the test)."""
    from leaderboards import sync

    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["LOCATION"] = own_redis.url
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["hosts"][0]["address"] = own_redis.url
    with override_settings(
        REDIS_URL=own_redis.url, CACHES=caches, CHANNEL_LAYERS=layers, REDIS_BREAKER_SECONDS=BREAKER_SECONDS
    ):
        store = index.redis_store()
        assert store is not None and store.client.connection_pool.connection_kwargs["port"] == own_redis.port
        sync.rebuild(store)
        yield own_redis


def asked_again(store: index.RedisStore) -> None:
    """Return once this process asks Redis again: the first call after the breaker's open
    period starts its ping (and is refused, as every call until the ping is answered)."""
    deadline = time.monotonic() + BREAKER_SECONDS + BOUNDED_SECONDS
    while True:
        try:
            store.is_ready()
            return
        except breaker.Open:
            assert time.monotonic() < deadline, "the rank index's breaker did not close"
            time.sleep(0.05)


def boards_of(game: Game) -> list[Board]:
    return [Board.game(game.pk), Board.game(game.pk, "eu"), Board.everywhere(), Board.everywhere("eu")]


def ranked_alike(game: Game, player_ids: list[str]) -> bool:
    store = index.redis_store()
    assert store is not None
    return all(
        store.page(board, 0, 100) == index.SQL.page(board, 0, 100)
        and all(store.standing(board, pid) == index.SQL.standing(board, pid) for pid in player_ids)
        for board in boards_of(game)
    )


def timed_unlock(client: Any, player: Any, ach: Any) -> tuple[int, float]:
    started = time.monotonic()
    response = unlock(client, player, ach)
    return response.status_code, time.monotonic() - started


def test_an_unresponsive_redis_delays_an_unlock_a_bounded_time_and_the_relay_ranks_it_after(
    api: Any, game: Game, game_key: str, on_own_redis: OwnRedis
) -> None:
    client = api.as_key(game_key)
    alice, dave = make_player("alice"), make_player("dave")
    assert unlock(client, alice, achievement(game, "FIRST_FLIGHT")).status_code == 201

    on_own_redis.pause(seconds=BOUNDED_SECONDS + 2)
    status, took = timed_unlock(client, dave, achievement(game, "ACE_PILOT"))

    assert status == 201
    assert took < BOUNDED_SECONDS
    assert dave.unlocks.count() == 1  # committed while Redis said nothing
    assert OutboxEvent.objects.filter(kind="unlocks").exists()  # its ranking waits in the outbox

    time.sleep(BOUNDED_SECONDS + 2 - took)  # Redis answers again
    asked_again(index.redis_store())
    outbox.relay_pending()
    assert ranked_alike(game, [str(alice.pk), str(dave.pk)])
    assert index.redis_store().standing(Board.game(game.pk), str(dave.pk)).position == 0


def test_an_unreachable_redis_costs_an_unlock_nothing_and_the_rebuilt_index_ranks_it(
    api: Any, game: Game, game_key: str, on_own_redis: OwnRedis
) -> None:
    client = api.as_key(game_key)
    alice, dave = make_player("alice"), make_player("dave")
    assert unlock(client, alice, achievement(game, "FIRST_FLIGHT")).status_code == 201

    on_own_redis.stop()
    status, took = timed_unlock(client, dave, achievement(game, "ACE_PILOT"))
    board = api.anonymous().get(f"/api/v1/leaderboards/{game.pk}")

    assert status == 201
    assert took < BOUNDED_SECONDS
    # Boards answer from PostgreSQL meanwhile, with the new unlock.
    assert [row["username"] for row in board.json()["rankings"]] == ["dave", "alice"]

    on_own_redis.start()  # back, and empty: no READY key
    asked_again(index.redis_store())
    assert not index.redis_store().is_ready()
    outbox.relay_pending()
    # Reads answer from PostgreSQL until the next sync pass (every 60 s) rebuilds the index.
    assert api.anonymous().get(f"/api/v1/leaderboards/{game.pk}").json() == board.json()
    leaderboard_tasks.sync_index()
    assert index.redis_store().is_ready()
    assert api.anonymous().get(f"/api/v1/leaderboards/{game.pk}").json() == board.json()
    assert ranked_alike(game, [str(alice.pk), str(dave.pk)])
