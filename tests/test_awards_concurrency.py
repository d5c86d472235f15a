"""A manifest that changes what beating a game takes, while unlocks of that game are being
written: neither may miss the other (achievements.awards.pause_unlocks).

Each test holds one transaction open on purpose and lets the other start, waits until the
second is seen waiting for the first (or finished, which would be the bug), then lets the
first commit. The unlock reads types in its own snapshot, so without the lock one of the
two writes would judge the award by a set the other had already changed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction

from achievements import services
from achievements.models import Award, Source, Unlock
from achievements.services import import_manifest, revoke_unlock, unlock_achievement
from stats.models import PlayerGameStats
from tracker.models import Game, Player

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = {
    "slug": "retyped",
    "name": "Retyped",
    "achievements": [
        {"api_name": "CAVE", "name": "The Cave", "points": 5},
        {"api_name": "THRONE", "name": "The Throne", "points": 20, "type": "win_condition"},
    ],
}
# The cave becomes a progression achievement: beating the game now takes it.
AFTER = {**BEFORE, "achievements": [{**BEFORE["achievements"][0], "type": "progression"}, BEFORE["achievements"][1]]}


def in_thread(work: Callable[[], Any]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as error:  # noqa: B036 - re-raised by the test
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def waiting_for_a_lock_or_done(thread: threading.Thread) -> bool:
    """Whether some other session of this database waits for a lock (True), or the thread
    finished without waiting (False), within 10 s."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                " WHERE NOT l.granted AND a.datname = current_database()"
            )
            if cursor.fetchone()[0]:
                return True
        if not thread.is_alive():
            return False
        time.sleep(0.02)
    raise AssertionError("neither waiting nor done")


def cave(game: Game) -> Any:
    return game.achievements.get(api_name="CAVE")


def assert_beaten_with_counters_right(alice: Player, game: Game) -> None:
    row = PlayerGameStats.objects.get(player=alice, game=game)
    assert (row.progression_count, row.win_condition_count) == (1, 1)
    assert Award.objects.filter(player=alice, game=game, kind="beaten").exists()


def test_a_retype_waits_for_an_unlock_in_flight_and_counts_it(alice: Player) -> None:
    game = import_manifest(manifest=BEFORE).game
    unlock_achievement(player=alice, achievement=game.achievements.get(api_name="THRONE"), source=Source.GAME_SERVER)
    written, release = threading.Event(), threading.Event()

    def unlock_held_open() -> None:
        with transaction.atomic():
            unlock_achievement(player=alice, achievement=cave(game), source=Source.GAME_SERVER)
            written.set()
            assert release.wait(timeout=20)

    unlocking, unlock_errors = in_thread(unlock_held_open)
    assert written.wait(timeout=10)
    importing, import_errors = in_thread(lambda: import_manifest(manifest=AFTER))
    waited = waiting_for_a_lock_or_done(importing)
    release.set()
    unlocking.join(timeout=20)
    importing.join(timeout=20)

    assert not unlock_errors and not import_errors, unlock_errors + import_errors
    assert waited, "the import did not wait for the unlock in flight"
    assert_beaten_with_counters_right(alice, game)


def test_an_unlock_waits_for_a_retype_in_flight_and_counts_by_the_new_type(alice: Player) -> None:
    game = import_manifest(manifest=BEFORE).game
    unlock_achievement(player=alice, achievement=game.achievements.get(api_name="THRONE"), source=Source.GAME_SERVER)
    the_cave = cave(game)
    imported, release = threading.Event(), threading.Event()

    def import_held_open() -> None:
        with transaction.atomic():
            import_manifest(manifest=AFTER)
            imported.set()
            assert release.wait(timeout=20)

    importing, import_errors = in_thread(import_held_open)
    assert imported.wait(timeout=10)
    unlocking, unlock_errors = in_thread(
        lambda: unlock_achievement(player=alice, achievement=the_cave, source=Source.GAME_SERVER)
    )
    waited = waiting_for_a_lock_or_done(unlocking)
    release.set()
    importing.join(timeout=20)
    unlocking.join(timeout=20)

    assert not unlock_errors and not import_errors, unlock_errors + import_errors
    assert waited, "the unlock did not wait for the import in flight"
    assert_beaten_with_counters_right(alice, game)


def test_a_revocation_and_a_retype_at_once_wait_for_each_other_in_one_order(
    alice: Player, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The revocation has locked its rows when the import starts: the import waits for it
    (not the other way round as well, which would be a deadlock), then counts without it."""
    game = import_manifest(manifest=BEFORE).game
    for api_name in ("CAVE", "THRONE"):
        unlock_achievement(
            player=alice, achievement=game.achievements.get(api_name=api_name), source=Source.GAME_SERVER
        )
    held = Unlock.objects.get(player=alice, achievement__api_name="CAVE")
    locked, release = threading.Event(), threading.Event()
    take_back = services._take_back_season_points

    def paused(*args: Any, **kwargs: Any) -> None:  # runs once the revocation holds its rows
        locked.set()
        assert release.wait(timeout=20)
        take_back(*args, **kwargs)

    monkeypatch.setattr(services, "_take_back_season_points", paused)
    revoking, revoke_errors = in_thread(lambda: revoke_unlock(unlock=held, actor=None, reason="cheated"))
    assert locked.wait(timeout=10)
    importing, import_errors = in_thread(lambda: import_manifest(manifest=AFTER))
    waited = waiting_for_a_lock_or_done(importing)
    release.set()
    revoking.join(timeout=20)
    importing.join(timeout=20)

    assert not revoke_errors and not import_errors, revoke_errors + import_errors
    assert waited, "the import did not wait for the revocation in flight"
    row = PlayerGameStats.objects.get(player=alice, game=game)
    assert (row.progression_count, row.win_condition_count) == (0, 1)
    assert not Award.objects.filter(player=alice, game=game).exists()  # the cave is missing now
