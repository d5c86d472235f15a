"""Concurrent unlocks count exactly once: many requests at the same instant, each on its own connection."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from django.db import connection

from achievements.models import Progress, Unlock
from achievements.services import import_manifest
from tests.conftest import Api, achievement, make_player
from tests.helpers import BATCH_URL, manifest, post, progress, stats, totals, unlock
from tracker.models import Game, Player
from tracker.services import game_key_create

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 20
T = TypeVar("T")


def concurrently(count: int, prepare: Callable[[int], Callable[[], T]]) -> list[T]:
    """Fire `count` requests at the same instant from `count` threads; return the results in order.

    `prepare(i)` runs first in thread i (building its own client) and returns the call to make;
    a barrier then releases every call together. Django's connections are per thread: each
    thread closes its own.
    """
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            call = prepare(index)
            barrier.wait(timeout=30)
            results[index] = call()
        except BaseException as error:  # noqa: B036 - re-raised in the main thread below
            errors.append(error)
            barrier.abort()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a request hung"
    if errors:
        raise errors[0]
    return results


def test_the_same_unlock_sent_at_once_by_many_clients_counts_once(
    api: Api, alice: Player, game: Game, game_key: str
) -> None:
    ace = achievement(game, "ACE_PILOT")

    def prepare(_: int) -> Callable[[], Any]:
        client = api.as_key(game_key)
        return lambda: unlock(client, alice, ace)

    responses = concurrently(THREADS, prepare)

    assert Counter(r.status_code for r in responses) == {201: 1, 200: THREADS - 1}
    assert [r.json()["already_unlocked"] for r in responses].count(False) == 1
    assert Unlock.objects.filter(player=alice, achievement=ace).count() == 1
    assert stats(alice, game) == (25, 1, 25.0)
    assert totals(alice) == (25, 1)


def test_different_unlocks_for_one_player_at_once_are_all_counted(api: Api, alice: Player) -> None:
    game = import_manifest(manifest=manifest("twenty", THREADS, points=7)).game
    key = game_key_create(game=game)
    achievements = list(game.achievements.order_by("position"))

    def prepare(index: int) -> Callable[[], Any]:
        client = api.as_key(key)
        return lambda: unlock(client, alice, achievements[index])

    responses = concurrently(THREADS, prepare)

    assert [r.status_code for r in responses] == [201] * THREADS
    assert Unlock.objects.filter(player=alice).count() == THREADS
    assert stats(alice, game) == (7 * THREADS, THREADS, 100.0)
    assert totals(alice) == (7 * THREADS, THREADS)


def test_overlapping_batches_at_once_neither_deadlock_nor_double_count(
    api: Api, alice: Player, bob: Player, charlie: Player, game: Game, game_key: str
) -> None:
    players = [alice, bob, charlie]
    names = ["FIRST_FLIGHT", "ACE_PILOT", "SECRET_ENDING", "KILL_100"]
    items = [
        {"player_id": str(p.pk), "achievement_id": str(achievement(game, name).pk)} for p in players for name in names
    ]

    def prepare(index: int) -> Callable[[], Any]:
        client = api.as_key(game_key)
        shuffled = random.Random(index).sample(items, len(items))
        return lambda: post(client, BATCH_URL, {"unlocks": shuffled})

    responses = concurrently(10, prepare)

    assert [r.status_code for r in responses] == [200] * 10
    assert sum(r.json()["created"] for r in responses) == len(items)
    assert sum(r.json()["already_unlocked"] for r in responses) == len(items) * 9
    assert Unlock.objects.count() == len(items)
    for player in players:
        assert stats(player, game) == (100, 4, 100.0)
        assert totals(player) == (100, 4)


def test_concurrent_progress_reports_keep_the_highest_and_unlock_once(api: Api, game: Game, game_key: str) -> None:
    dave = make_player("dave")
    kills = achievement(game, "KILL_100")

    def prepare(index: int) -> Callable[[], Any]:
        client = api.as_key(game_key)
        return lambda: progress(client, dave, kills, (index + 1) * 5)  # 5, 10, ... 100

    responses = concurrently(THREADS, prepare)

    assert [r.status_code for r in responses] == [200] * THREADS
    assert [r.json()["newly_unlocked"] for r in responses].count(True) == 1
    assert Progress.objects.get(player=dave, achievement=kills).value == 100
    assert Unlock.objects.filter(player=dave).count() == 1
    assert stats(dave, game) == (15, 1, 25.0)
    assert totals(dave) == (15, 1)
