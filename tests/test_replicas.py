"""Read replicas against real PostgreSQL streaming replication (docs/replicas.md).

The app runs as real servers (gunicorn and Daphne) on a primary and a streaming replica of the
module's own (tests/replication.py), and is judged only by what its HTTP answers show.
Pausing the replica's replay makes it show the past, so whichever database served a read
can be told from the answer: stale data came from the replica, fresh data from the primary.

The cast: alice, whom a game server unlocks for; bob, who never writes and watches; dana,
who unlocks with her own token; erin, whose view is checked while Redis is down.

The router's decisions themselves are checked in-process at the end, without servers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.db import connections
from django.http import HttpRequest
from django.test import RequestFactory
from django_redis import get_redis_connection
from redis.exceptions import ConnectionError as RedisConnectionError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken
from rest_framework_simplejwt.tokens import AccessToken

from achievements.models import Unlock
from infra import replicas
from infra.replicas import ReplicaRouter
from tests.replication import PostgresPair
from tests.servers import OwnRedis, Server, daphne, gunicorn, post_json, running, server_environment
from tracker.models import GameKey, Player

CATCH_UP_SECONDS = 20.0


def seed() -> None:
    """Run inside `manage.py shell` on the pair's primary: the game, the cast and what the
    tests need to call as them, printed as JSON."""
    from rest_framework_simplejwt.tokens import RefreshToken

    from achievements.services import UnlockRequest, import_manifest, unlock_achievements
    from tests.conftest import STAR_RAIDERS, make_player
    from tracker.models import Source
    from tracker.services import game_key_create

    game = import_manifest(manifest=STAR_RAIDERS).game
    cast = {name: make_player(name) for name in ("alice", "bob", "dana", "erin")}
    ace = game.achievements.get(api_name="ACE_PILOT")
    unlock_achievements(
        [UnlockRequest(cast[name].pk, ace) for name in ("bob", "erin")], source=Source.GAME_SERVER, live=False
    )
    print(
        json.dumps(
            {
                "game_key": game_key_create(game=game),
                "ids": {name: str(player.pk) for name, player in cast.items()},
                "tokens": {name: str(RefreshToken.for_user(player).access_token) for name, player in cast.items()},
            }
        )
    )


class Site:
    """The app as its callers see it, over HTTP, plus the pair behind it for the setup
    and the checks a user could not make (what each server holds)."""

    def __init__(self, servers: list[Server], pair: PostgresPair, redis: OwnRedis, seeded: dict[str, Any]) -> None:
        self.servers = servers
        self.server = servers[0]  # gunicorn, the API's production server
        self.pair = pair
        self.redis = redis
        self.game_key: str = seeded["game_key"]
        self.ids: dict[str, str] = seeded["ids"]
        self.tokens: dict[str, str] = seeded["tokens"]

    def get(self, path: str, *, as_player: str | None = None, server: Server | None = None) -> dict[str, Any]:
        server = server or self.server
        headers = {"Authorization": f"Bearer {self.tokens[as_player]}"} if as_player else {}
        request = urllib.request.Request(server.http + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            pytest.fail(f"GET {path} answered {error.code}: {error.read()[:500]!r}\n{server.output()}")

    def status(self, path: str, server: Server) -> int:
        """The status `server` answers an anonymous GET of `path` with."""
        try:
            with urllib.request.urlopen(server.http + path, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    def unlocked(self, player: str, *, as_player: str | None = None) -> set[str]:
        """The api_names of `player`'s unlocked achievements, as this caller is shown them."""
        found = self.get(f"/api/v1/players/{self.ids[player]}/achievements", as_player=as_player)
        return {item["api_name"] for item in found["achievements"]}

    def board_points(self, server: Server | None = None) -> dict[str, int]:
        """Points by username on the game's public board, as an anonymous visitor sees it."""
        board = self.get("/api/v1/leaderboards/star-raiders", server=server)
        return {row["username"]: row["points"] for row in board["rankings"]}

    def unlock(self, player: str, achievement: str, *, as_player: str | None = None) -> int:
        """Report an unlock: as the game server, naming the achievement by api_name; or as
        the player (`as_player`), for their own, naming it by id."""
        if as_player is None:
            body = {"player_id": self.ids[player], "achievement": achievement}
            auth = f"Api-Key {self.game_key}"
        else:
            body = {"player_id": self.ids[player], "achievement_id": self.achievement_id(achievement)}
            auth = f"Bearer {self.tokens[as_player]}"
        status, answer = post_json(self.server.http + "/api/v1/achievements/unlock", body, {"Authorization": auth})
        assert status in (200, 201), answer
        return status

    def achievement_id(self, api_name: str) -> str:
        found = self.get("/api/v1/games/star-raiders/achievements?limit=100")
        return next(item["id"] for item in found["achievements"] if item["api_name"] == api_name)

    def points_on_primary(self, player: str) -> int:
        return self.pair.on_primary(
            "SELECT points FROM stats_playergamestats WHERE player_id = %s", [self.ids[player]]
        )[0][0]

    def add_points_on_primary(self, player: str, points: int) -> None:
        """Change the board behind the app's back, on the primary only."""
        self.pair.on_primary(
            "UPDATE stats_playergamestats SET points = points + %s WHERE player_id = %s", [points, self.ids[player]]
        )


def eventually(what: str, check: Callable[..., bool], *arguments: Any) -> None:
    """Until `check(*arguments)` holds, which it must within CATCH_UP_SECONDS."""
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while not check(*arguments):
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {CATCH_UP_SECONDS} s")
        time.sleep(0.1)


def manage(environment: dict[str, str], *arguments: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"manage.py {arguments[0]} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The pair, migrated and seeded; a Redis of the module's own (pins, and a rank index
    never built, so boards are read from SQL); one gunicorn worker and one pooled Daphne
    process on both databases."""
    logs = tmp_path_factory.mktemp("replica-logs")
    pair = PostgresPair()
    redis = OwnRedis(logs)
    try:
        pair.start()
        redis.start()
        environment = {
            "DATABASE_URL": pair.primary_url,
            "DATABASE_REPLICA_URLS": pair.replica_url,
            "REDIS_URL": redis.url,
            # Persistent connections, as production runs gunicorn: a replica stopped under
            # one must be survived too, not only a refused new connection.
            "DB_CONN_MAX_AGE": "60",
            # Every request tries the replica again: a stopped replica is met on each one.
            "REPLICA_RETRY_SECONDS": "0",
            # No pin may run out while a test still counts on it, however slow the machine.
            "REPLICA_PIN_SECONDS": "60",
        }
        # Set up on the primary alone: the seed's unlocks pin nobody.
        on_primary = {**server_environment(), "DATABASE_URL": pair.primary_url, "REDIS_URL": redis.url}
        manage(on_primary, "migrate", "-v0")
        seeded = json.loads(
            manage(on_primary, "shell", "-c", "from tests.test_replicas import seed; seed()").splitlines()[-1]
        )
        pair.wait_until_replayed()
        # Daphne as production runs it: a connection pool per database (docs/architecture.md).
        pooled = {**environment, "DB_POOL_MAX_SIZE": "4", "DB_POOL_TIMEOUT": "1"}
        with (
            running({"web": lambda port: gunicorn(port, workers=1)}, logs, environment) as web,
            running({"asgi": daphne}, logs, pooled) as asgi,
        ):
            yield Site(web + asgi, pair, redis, seeded)
    finally:
        redis.stop()
        pair.stop()


def test_an_anonymous_read_is_served_by_the_replica_and_catches_up(site: Site) -> None:
    before = site.board_points()["bob"]
    site.pair.pause_replay()
    try:
        site.add_points_on_primary("bob", 1000)
        assert site.points_on_primary("bob") == before + 1000

        for server in site.servers:
            assert site.board_points(server)["bob"] == before, server.name  # the replica's past
    finally:
        site.pair.resume_replay()
    for server in site.servers:
        eventually(
            f"{server.name}: the replica catches up", lambda at: site.board_points(at)["bob"] == before + 1000, server
        )


def test_a_game_server_unlock_is_written_to_the_primary_and_its_player_sees_it_at_once(site: Site) -> None:
    site.pair.pause_replay()
    try:
        assert site.unlock("alice", "FIRST_FLIGHT") == 201

        # Written on the primary (the replica is read-only, and paused).
        unlock_rows = "SELECT count(*) FROM achievements_unlock WHERE player_id = %s"
        assert site.pair.on_primary(unlock_rows, [site.ids["alice"]]) == [(1,)]
        assert site.pair.on_replica(unlock_rows, [site.ids["alice"]]) == [(0,)]

        # Alice, pinned by the game server's write, reads the primary...
        assert site.unlocked("alice", as_player="alice") == {"FIRST_FLIGHT"}
        # ...while everyone else still reads the replica's past.
        assert site.unlocked("alice", as_player="bob") == set()
        assert site.unlocked("alice") == set()
        assert "alice" not in site.board_points()
    finally:
        site.pair.resume_replay()
    eventually("everyone sees the unlock once replayed", lambda: site.unlocked("alice") == {"FIRST_FLIGHT"})


def test_a_player_who_unlocks_with_their_own_token_reads_it_back_at_once(site: Site) -> None:
    site.pair.pause_replay()
    try:
        assert site.unlock("dana", "FIRST_FLIGHT", as_player="dana") == 201

        assert site.unlocked("dana", as_player="dana") == {"FIRST_FLIGHT"}
        assert site.unlocked("dana", as_player="bob") == set()
    finally:
        site.pair.resume_replay()


def test_with_redis_down_a_signed_in_player_reads_the_primary(site: Site) -> None:
    """Pins live in Redis: when they cannot be read, a caller might be pinned, so reads the
    primary. Anonymous reads, which no pin concerns, keep going to the replica."""
    before = site.board_points()["erin"]
    site.pair.pause_replay()
    site.redis.stop()
    try:
        site.add_points_on_primary("erin", 500)
        statistics = site.get(f"/api/v1/players/{site.ids['erin']}/statistics", as_player="erin")
        assert [game["points"] for game in statistics["games"]] == [before + 500]
        assert site.board_points()["erin"] == before
    finally:
        site.redis.start()
        site.pair.resume_replay()


def test_the_player_a_read_names_is_looked_up_where_the_read_goes(site: Site) -> None:
    """A standing's player is read through the router like the rest of the read: a player
    deactivated on the primary is still found on a replica that has not replayed it yet."""
    standing = f"/api/v1/leaderboards/star-raiders/player/{site.ids['erin']}"
    deactivate = "UPDATE tracker_player SET is_active = %s WHERE id = %s"
    site.pair.pause_replay()
    try:
        site.pair.on_primary(deactivate, [False, site.ids["erin"]])
        for server in site.servers:
            assert site.status(standing, server) == 200, server.name  # the replica's past
    finally:
        site.pair.resume_replay()
    try:
        eventually("the replica replays it", lambda: all(site.status(standing, s) == 404 for s in site.servers))
    finally:
        site.pair.on_primary(deactivate, [True, site.ids["erin"]])
        site.pair.wait_until_replayed()


def test_when_the_replica_stops_reads_come_from_the_primary(site: Site) -> None:
    site.pair.wait_until_replayed()
    site.pair.stop_replica()
    site.add_points_on_primary("bob", 7)
    expected = site.points_on_primary("bob")

    # The first read of each process meets its dead persistent connection, the next ones a
    # refused connect.
    for server in site.servers:
        for _ in range(3):
            assert site.board_points(server)["bob"] == expected, server.name
    assert site.unlocked("alice", as_player="bob") == {"FIRST_FLIGHT"}


# --- The router's decisions, in-process --------------------------------------------------


@pytest.fixture
def routed(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[ReplicaRouter]:
    """The router as if `replica1` were configured and healthy; pins in the suite's Redis."""
    settings.DATABASE_REPLICAS = ["replica1"]
    monkeypatch.setattr(replicas, "choose_replica", lambda: "replica1")
    replicas.reset()
    yield ReplicaRouter()
    replicas.reset()
    client = get_redis_connection("default")
    for key in client.scan_iter(replicas.PIN_KEY_PREFIX + "*"):
        client.delete(key)


def request(method: str = "GET", player: Player | None = None) -> HttpRequest:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {AccessToken.for_user(player)}"} if player else {}
    return getattr(RequestFactory(), method.lower())("/api/v1/games/", **headers)


def a_player(name: str) -> Player:
    """A player who needs no row: routing never reads the database to name a caller."""
    return Player(username=name)


def test_a_safe_request_reads_the_replica_and_an_unsafe_one_the_primary(routed: ReplicaRouter) -> None:
    with replicas.request_reads(request("GET")):
        assert routed.db_for_read(Unlock) == "replica1"
    with replicas.request_reads(request("POST")):
        assert routed.db_for_read(Unlock) == "default"


def test_who_is_signed_in_is_always_read_from_the_primary(routed: ReplicaRouter) -> None:
    with replicas.request_reads(request("GET")):
        assert routed.db_for_read(Session) == "default"
        assert routed.db_for_read(BlacklistedToken) == "default"
        assert routed.db_for_read(GameKey) == "default"
        assert routed.db_for_read(Unlock) == "replica1"


def test_reads_inside_a_transaction_go_to_the_primary(routed: ReplicaRouter) -> None:
    with replicas.request_reads(request("GET")), mock.patch.object(connections["default"], "in_atomic_block", True):
        assert routed.db_for_read(Unlock) == "default"


def test_a_request_that_wrote_reads_the_primary_after_and_pins_the_player_it_wrote(routed: ReplicaRouter) -> None:
    frank, grace = a_player("frank"), a_player("grace")
    with replicas.request_reads(request("GET")):
        assert routed.db_for_read(Unlock) == "replica1"
        assert routed.db_for_write(Player, instance=frank) == "default"
        assert routed.db_for_read(Unlock) == "default"

    with replicas.request_reads(request("GET", frank)):
        assert routed.db_for_read(Unlock) == "default"
    with replicas.request_reads(request("GET", grace)):
        assert routed.db_for_read(Unlock) == "replica1"


def test_a_caller_who_made_an_unsafe_request_is_pinned(routed: ReplicaRouter) -> None:
    frank = a_player("frank")
    with replicas.request_reads(request("POST", frank)):
        pass
    with replicas.request_reads(request("GET", frank)):
        assert routed.db_for_read(Unlock) == "default"


def test_a_refused_unsafe_request_pins_nobody(routed: ReplicaRouter) -> None:
    frank = a_player("frank")
    with replicas.request_reads(request("POST", frank)) as scope:
        scope.status = 403
    with replicas.request_reads(request("GET", frank)):
        assert routed.db_for_read(Unlock) == "replica1"


def test_a_browser_is_pinned_by_its_session_like_a_token(routed: ReplicaRouter) -> None:
    frank = a_player("frank")

    def from_browser(method: str) -> HttpRequest:
        made = request(method)
        made.session = {SESSION_KEY: str(frank.pk)}  # type: ignore[assignment]
        return made

    with replicas.request_reads(from_browser("GET")):
        assert routed.db_for_read(Unlock) == "replica1"
    with replicas.request_reads(from_browser("POST")):
        pass
    with replicas.request_reads(from_browser("GET")):
        assert routed.db_for_read(Unlock) == "default"
    with replicas.request_reads(request("GET", frank)):
        assert routed.db_for_read(Unlock) == "default"  # the same player, by token


def test_pin_players_pins_players_a_game_server_changed_once_committed(
    routed: ReplicaRouter, db: Any, django_capture_on_commit_callbacks: Any
) -> None:
    frank = a_player("frank")

    def frank_reads() -> str:
        # As a request outside this test's own transaction would be routed.
        with (
            replicas.request_reads(request("GET", frank)),
            mock.patch.object(connections["default"], "in_atomic_block", False),
        ):
            return routed.db_for_read(Unlock)

    with django_capture_on_commit_callbacks(execute=True):
        replicas.pin_players([frank.pk])  # outside a request, as a Celery task would
        assert frank_reads() == "replica1"  # not before the commit
    assert frank_reads() == "default"


def test_without_replicas_pin_players_writes_nothing(routed: ReplicaRouter, settings: Any) -> None:
    settings.DATABASE_REPLICAS = []
    frank = a_player("frank")
    replicas.pin_players([frank.pk])
    assert not replicas._pin_client().exists(replicas.PIN_KEY_PREFIX + replicas.player_subject(frank.pk))


def test_when_pins_cannot_be_read_a_caller_reads_the_primary_and_anonymous_the_replica(
    routed: ReplicaRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Down:
        def exists(self, *keys: str) -> int:
            raise RedisConnectionError("connection refused")

    monkeypatch.setattr(replicas, "_pin_client", Down)
    with replicas.request_reads(request("GET", a_player("frank"))):
        assert routed.db_for_read(Unlock) == "default"
    with replicas.request_reads(request("GET")):
        assert routed.db_for_read(Unlock) == "replica1"


def test_outside_a_request_everything_reads_the_primary_unless_it_opts_in(routed: ReplicaRouter) -> None:
    assert routed.db_for_read(Unlock) == "default"
    with replicas.stale_reads():
        assert routed.db_for_read(Unlock) == "replica1"
