"""The fixed cast every test uses.

Players: alice (eu, public), bob (na, public), charlie (eu, private).
Games: star-raiders (the main one) and moon-miners (another studio's game).
Each game has one API key; `api` builds a client authenticated as any of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from achievements.services import import_manifest
from config.celery import app as celery_app
from tracker.models import Game, Player, Privacy
from tracker.services import game_key_create

STAR_RAIDERS = {
    "slug": "star-raiders",
    "name": "Star Raiders",
    "achievements": [
        {"api_name": "FIRST_FLIGHT", "name": "First Flight", "points": 10, "client_unlockable": True},
        {"api_name": "ACE_PILOT", "name": "Ace Pilot", "points": 25},
        {"api_name": "SECRET_ENDING", "name": "The Truth", "points": 50, "hidden": True},
        {"api_name": "KILL_100", "name": "Centurion", "points": 15, "progress_target": 100},
    ],
}
MOON_MINERS = {
    "slug": "moon-miners",
    "name": "Moon Miners",
    "achievements": [{"api_name": "FIRST_ORE", "name": "First Ore", "points": 5, "client_unlockable": True}],
}


@pytest.fixture(autouse=True)
def _inline_celery() -> Iterator[None]:
    """Tasks run inline in tests, even when CI configures a real broker."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


@pytest.fixture(autouse=True)
def _inline_outbox(settings: Any) -> None:
    """The outbox is relayed right after each commit, in the writing process, as on the
    laptop default; tests of the relay itself switch to "process" and relay by hand."""
    settings.OUTBOX_RELAY = "inline"


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    from django.core.cache import cache

    from infra import breaker, memo

    cache.clear()
    memo.clear_all()
    yield
    breaker.reset()  # a Redis a test silenced is not left unasked by the next
    cache.clear()
    memo.clear_all()


PASSWORD = "correct horse battery staple"


def make_player(username: str, *, region: str = "eu", privacy: str = Privacy.PUBLIC) -> Player:
    player = Player(username=username, region=region, privacy=privacy)
    player.set_email(f"{username}@example.com")
    player.set_password(PASSWORD)
    player.save()
    return player


@pytest.fixture
def alice(db: Any) -> Player:
    return make_player("alice", region="eu")


@pytest.fixture
def bob(db: Any) -> Player:
    return make_player("bob", region="na")


@pytest.fixture
def charlie(db: Any) -> Player:
    return make_player("charlie", region="eu", privacy=Privacy.PRIVATE)


@pytest.fixture
def game(db: Any) -> Game:
    return import_manifest(manifest=STAR_RAIDERS).game


@pytest.fixture
def other_game(db: Any) -> Game:
    return import_manifest(manifest=MOON_MINERS).game


@pytest.fixture
def game_key(game: Game) -> str:
    return game_key_create(game=game)


@pytest.fixture
def other_game_key(other_game: Game) -> str:
    return game_key_create(game=other_game)


class Api:
    """API clients for each kind of caller."""

    def anonymous(self) -> APIClient:
        return APIClient()

    def as_key(self, key: str) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
        return client

    def as_player(self, player: Player) -> APIClient:
        client = APIClient()
        token = RefreshToken.for_user(player).access_token
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client


@pytest.fixture
def api() -> Api:
    return Api()


def achievement(game: Game, api_name: str) -> Any:
    return game.achievements.get(api_name=api_name)


@pytest.fixture(autouse=True)
def _rank_index_off_unless_asked(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Boards answer from SQL unless a test asks for the Redis index with `rank_index` (or
    for one on a Redis Cluster with `cluster_index`).

    The index is updated after commit; tests inside a rolled-back transaction never commit,
    so only transactional tests (which `rank_index` makes them) can see it kept true.
    """
    if not {"rank_index", "cluster_index"} & set(request.fixturenames):
        from leaderboards import index

        monkeypatch.setattr(index, "redis_store", lambda: None)


@pytest.fixture
def rank_index(transactional_db: Any) -> Iterator[Any]:
    """The Redis rank index, empty and built (ready), for a transactional test."""
    from leaderboards import index, sync

    store = index.redis_store()
    assert store is not None
    store.client.flushdb()
    sync.rebuild(store)
    yield store
    store.client.flushdb()


@pytest.fixture
def meter(rank_index: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Counts SQL queries and Redis round trips (tests/costs.py), with the index built."""
    from tests.costs import Meter

    return Meter(rank_index, monkeypatch)


@pytest.fixture
def own_redis(tmp_path: Any) -> Iterator[Any]:
    """A Redis server of the test's own on a free port, to stop or pause on purpose."""
    from tests.servers import OwnRedis

    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


# --- No silent skips in CI ----------------------------------------------------------------
# A test that skips checks nothing, and a run that reports "passed" with it looks the same
# as one that checked. CI sets FORBID_SKIPS=1: any skip (a skip mark, pytest.skip() in a test
# or a fixture, importorskip) then fails, saying why it would have skipped. Expected
# failures (xfail) keep their own outcome.


def skips_forbidden() -> bool:
    value = os.environ.get("FORBID_SKIPS", "")
    if value not in ("", "0", "1"):
        raise pytest.UsageError(f"FORBID_SKIPS must be 1 (skips fail) or 0/unset (skips skip), not {value!r}")
    return value == "1"


def skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    # A skip's longrepr is (path, line, "Skipped: <reason>").
    if isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return str(report.longrepr)


def fail_the_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail") and skips_forbidden():
        report.outcome = "failed"
        report.longrepr = f"skipped, and FORBID_SKIPS=1 forbids skipping: {skip_reason(report)}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    fail_the_skip(outcome.get_result())  # type: ignore[attr-defined]


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    """A module that skips as a whole (a module-level importorskip) skips at collection."""
    outcome = yield
    fail_the_skip(outcome.get_result())  # type: ignore[attr-defined]
