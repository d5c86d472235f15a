"""A database that cannot serve: every request it fails answers 503 with Retry-After, never a
500, and an unlock that committed answers 2xx whatever fails after its commit
(docs/deployment.md, "Faults").

In-process first: a connection killed between an unlock's commit and its rank read, and a
PostgreSQL that refuses connections (a port nothing listens on) under the API, the pages and
the admin. Then the real thing: a PostgreSQL of the test's own, stopped and restarted under a
stream of unlocks to the app's servers (gunicorn and Daphne, as the Procfile runs them).
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import pwd
import random
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import close_old_connections, connection
from django.test import Client

from achievements.models import Unlock
from leaderboards import selectors
from tests.conftest import achievement, make_player
from tests.helpers import PROGRESS_URL, UNLOCK_URL, assert_error, post, stats, totals, unlock
from tests.replication import DATABASE, PostgresPair
from tests.servers import Server, daphne, free_port, gunicorn, running, server_environment, shared_database_url
from tracker.models import Game, Player

# --- In-process -----------------------------------------------------------------------------


def kill_connection() -> None:
    """End this process's database connection from the server side, as a PostgreSQL restart
    or a network cut does, and wait until its backend is gone."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    with psycopg.connect(shared_database_url(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
            time.sleep(0.01)


@pytest.fixture
def connection_lost_before_rank(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The connection dies after the unlock committed, right before its rank is read."""
    read_rank = selectors.rank_on

    def rank_on(*args: Any) -> int | None:
        kill_connection()
        return read_rank(*args)

    monkeypatch.setattr(selectors, "rank_on", rank_on)
    yield
    request_ended()  # however the test ended: the next test needs a working connection


def request_ended() -> None:
    """What the end of each request does in a server, which the test client leaves out: a
    broken connection is closed, and the next query opens a new one."""
    close_old_connections()


def make_staff(username: str) -> Player:
    """A community manager: signs in to the admin."""
    staff = make_player(username)
    staff.is_staff = staff.is_superuser = True
    staff.save(update_fields=["is_staff", "is_superuser"])
    return staff


def problems_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Records that are errors, or carry a traceback."""
    return [record for record in caplog.records if record.levelno >= logging.ERROR or record.exc_info]


@pytest.mark.django_db(transaction=True)
def test_an_unlock_whose_rank_cannot_be_read_after_commit_answers_201_without_a_rank(
    api: Any, game: Game, game_key: str, connection_lost_before_rank: None, caplog: pytest.LogCaptureFixture
) -> None:
    alice, ace = make_player("alice"), achievement(game, "ACE_PILOT")

    with caplog.at_level(logging.WARNING):
        response = unlock(api.as_key(game_key), alice, ace)
    request_ended()

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["already_unlocked"], body["new_rank"], body["rank_unavailable"]) == (False, None, True)
    assert Unlock.objects.filter(player=alice, achievement=ace).count() == 1
    assert stats(alice, game) == (25, 1, 25.0)
    assert totals(alice) == (25, 1)
    said = [record.getMessage() for record in caplog.records if record.name == "questboard.leaderboards"]
    assert len(said) == 1 and said[0].startswith("an unlock committed but its rank could not be read"), said
    assert problems_logged(caplog) == []


@pytest.mark.django_db(transaction=True)
def test_an_unlock_whose_rank_is_read_answers_without_the_flag(api: Any, game: Game, game_key: str) -> None:
    response = unlock(api.as_key(game_key), make_player("alice"), achievement(game, "ACE_PILOT"))

    assert response.status_code == 201
    assert response.json()["new_rank"] == 1
    assert "rank_unavailable" not in response.json()


@pytest.mark.django_db(transaction=True)
def test_progress_that_completes_an_unlock_answers_200_when_its_rank_cannot_be_read(
    api: Any, game: Game, game_key: str, connection_lost_before_rank: None
) -> None:
    alice, kills = make_player("alice"), achievement(game, "KILL_100")

    response = post(
        api.as_key(game_key), PROGRESS_URL, {"player_id": str(alice.pk), "achievement_id": str(kills.pk), "value": 100}
    )
    request_ended()

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["unlocked"], body["newly_unlocked"], body["new_rank"], body["rank_unavailable"]) == (
        True,
        True,
        None,
        True,
    )
    assert stats(alice, game) == (15, 1, 25.0)


@contextmanager
def database_refusing_connections() -> Iterator[None]:
    """PostgreSQL refuses every new connection (this process's points at a port nothing
    listens on), as while it is stopped; put back after."""
    database = connection.settings_dict
    before = database["HOST"], database["PORT"]
    connection.close()
    database["HOST"], database["PORT"] = "127.0.0.1", str(free_port())
    try:
        yield
    finally:
        connection.close()
        database["HOST"], database["PORT"] = before


def assert_unavailable_page(response: Any) -> None:
    assert response.status_code == 503, response.content
    assert response["Content-Type"].startswith("text/plain")
    assert int(response["Retry-After"]) > 0


@pytest.mark.django_db(transaction=True)
def test_with_the_database_refusing_connections_api_pages_and_admin_answer_503_logged_once_each(
    api: Any, game: Game, game_key: str, alice: Player, caplog: pytest.LogCaptureFixture
) -> None:
    browser = Client(raise_request_exception=False)  # errors raised in middleware: Django's handler answers
    browser.force_login(make_staff("stella"))  # the session lives in PostgreSQL: the first thing a page reads
    key_holder = api.as_key(game_key)
    assert unlock(key_holder, alice, achievement(game, "FIRST_FLIGHT")).status_code == 201  # the key is known
    ace = achievement(game, "ACE_PILOT")

    with database_refusing_connections(), caplog.at_level(logging.WARNING):
        answers = {
            "unlock": unlock(key_holder, alice, ace),
            "anonymous read": api.anonymous().get(f"/api/v1/leaderboards/{game.pk}"),
            "signed-in page": browser.get("/leaderboards/"),
            "admin": browser.get("/admin/"),
            "anonymous page": Client(raise_request_exception=False).get("/leaderboards/"),
        }

    for what in ("unlock", "anonymous read"):
        error = assert_error(answers[what], 503, "unavailable")
        assert "database" in error["message"], what
        assert int(answers[what]["Retry-After"]) > 0
    for what in ("signed-in page", "admin", "anonymous page"):
        assert_unavailable_page(answers[what])
    said = [record for record in caplog.records if record.name == "questboard.database"]
    assert len(said) == len(answers), [record.getMessage() for record in said]
    assert all(record.levelno == logging.WARNING and "Connection refused" in record.getMessage() for record in said)
    assert problems_logged(caplog) == []
    # Nothing was half done: the unlock answered 503 is not there, and it can be sent again.
    assert set(Unlock.objects.filter(player=alice).values_list("achievement__api_name", flat=True)) == {"FIRST_FLIGHT"}
    assert unlock(key_holder, alice, ace).status_code == 201


# --- PostgreSQL stopped and restarted under the app's servers ---------------------------------

PLAYERS = 30
ACHIEVEMENTS = 60
RATE_PER_SERVER = 20  # unlocks a second to each server: 40/s in all
BEFORE_SECONDS = 3.0
DOWN_SECONDS = 10.0
RECOVERY_SECONDS = 5.0  # every unlock sent this long after PostgreSQL is back answers 2xx
AFTER_SECONDS = RECOVERY_SECONDS + 4.0
REQUEST_SECONDS = 30.0


class RestartablePostgres(PostgresPair):
    """The pair's primary alone (no replica), stopped and started again on purpose."""

    OPTIONS = "-c fsync=off -c full_page_writes=off -c max_connections=100"

    def start(self) -> None:
        if self.user is not None:
            account = pwd.getpwnam(self.user)
            os.chown(self.workdir, account.pw_uid, account.pw_gid)
        self._run("initdb", "-D", self.primary_dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.resume()
        with self.connect(self.primary_port, "postgres") as admin:
            admin.execute(f"CREATE DATABASE {DATABASE}")

    def halt(self) -> None:
        """Stop it as an operator would (fast: clients' connections end, nothing is lost)."""
        self._run("pg_ctl", "-D", self.primary_dir, "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Start it; returns once it accepts connections."""
        self._start_server(self.primary_dir, self.primary_port, self.OPTIONS)


def seed() -> None:
    """Run inside `manage.py shell` on the test's PostgreSQL: a game, its players, a key,
    and a signed-in staff member's session, printed as JSON."""
    from achievements.services import import_manifest
    from tracker.services import game_key_create

    manifest = {
        "slug": "fault-line",
        "name": "Fault Line",
        "achievements": [
            {"api_name": f"STEP_{n:03}", "name": f"Step {n}", "points": 1 + n % 7} for n in range(ACHIEVEMENTS)
        ],
    }
    game = import_manifest(manifest=manifest).game
    players = [str(make_player(f"player{n}").pk) for n in range(PLAYERS)]
    browser = Client()
    browser.force_login(make_staff("stella"))
    print(
        json.dumps(
            {
                "game_key": game_key_create(game=game),
                "players": players,
                "session": browser.cookies[settings.SESSION_COOKIE_NAME].value,
            }
        )
    )


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


@dataclass(frozen=True)
class Sent:
    server: str
    pair: tuple[str, str]  # (player id, api_name)
    status: int  # 0: no HTTP answer at all
    sent_at: float
    answered_at: float
    retry_after: str | None
    body: bytes


def send(server: Server, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    """One request over a fresh connection (http.client: no proxies from the environment,
    error statuses as answers); the response, read."""
    client = http.client.HTTPConnection("127.0.0.1", server.port, timeout=REQUEST_SECONDS)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        client.request(method, path, body=payload, headers={"Content-Type": "application/json", **(headers or {})})
        response = client.getresponse()
        response.data = response.read()
        return response
    finally:
        client.close()


class UnlockStream:
    """Unlocks of distinct (player, achievement) pairs sent to each server at a steady rate,
    each from a thread of its own so a slow answer never holds up the next. A pair answered
    503 goes back in the queue, as a game server retries it; every answer is kept."""

    def __init__(self, servers: list[Server], game_key: str, players: list[str]) -> None:
        pairs = [(player, f"STEP_{n:03}") for player in players for n in range(ACHIEVEMENTS)]
        random.Random(19).shuffle(pairs)
        self.pending: deque[tuple[str, str]] = deque(pairs)
        self.servers = servers
        self.headers = {"Authorization": f"Api-Key {game_key}"}
        self.answers: list[Sent] = []
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=64)
        self.tickers = [threading.Thread(target=self._tick, args=(server,), daemon=True) for server in servers]

    def _tick(self, server: Server) -> None:
        period = 1 / RATE_PER_SERVER
        next_at = time.monotonic()
        while not self.stopped.is_set():
            with self.lock:
                pair = self.pending.popleft() if self.pending else None
            if pair is not None:
                self.pool.submit(self._unlock, server, pair)
            next_at += period
            time.sleep(max(0.0, next_at - time.monotonic()))

    def _unlock(self, server: Server, pair: tuple[str, str]) -> None:
        sent_at = time.monotonic()
        try:
            response = send(server, "POST", UNLOCK_URL, {"player_id": pair[0], "achievement": pair[1]}, self.headers)
            status, retry_after, body = response.status, response.getheader("Retry-After"), response.data
        except (OSError, http.client.HTTPException) as error:
            status, retry_after, body = 0, None, repr(error).encode()
        with self.lock:
            self.answers.append(Sent(server.name, pair, status, sent_at, time.monotonic(), retry_after, body))
            if status == 503:
                self.pending.append(pair)

    def __enter__(self) -> UnlockStream:
        for ticker in self.tickers:
            ticker.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopped.set()
        for ticker in self.tickers:
            ticker.join(timeout=10)
        self.pool.shutdown(wait=True)


@dataclass(frozen=True)
class Site:
    database: RestartablePostgres
    servers: list[Server]
    game_key: str
    players: list[str]
    session: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The test's own PostgreSQL, migrated and seeded; two gunicorn workers and a Daphne
    process on it as production runs them (gunicorn with persistent connections, Daphne with
    its default pool and nothing set), on the suite's Redis (REDIS_URL)."""
    logs = tmp_path_factory.mktemp("fault-logs")
    database = RestartablePostgres()
    try:
        database.start()
        environment = {
            **server_environment(),
            "DATABASE_URL": database.primary_url,
            # As production runs the web processes: persistent connections (a restart breaks
            # them under gunicorn's feet) and the outbox left to the relay process.
            "DB_CONN_MAX_AGE": "60",
            "OUTBOX_RELAY": "process",
        }
        manage(environment, "migrate", "-v0")
        seeded = json.loads(
            manage(environment, "shell", "-c", "from tests.test_faults_database import seed; seed()").splitlines()[-1]
        )
        commands: dict[str, Callable[[int], list[str]]] = {
            "gunicorn": lambda port: gunicorn(port, workers=2),
            "daphne": daphne,
        }
        with running(commands, logs, environment) as servers:
            yield Site(database, servers, seeded["game_key"], seeded["players"], seeded["session"])
    finally:
        database.stop()


def points_and_counts(site: Site, query: str) -> dict[str, tuple[int, int]]:
    """{player id: (points, unlocks)} from a query's (player_id, points, count) rows."""
    return {str(player): (int(points), int(count)) for player, points, count in site.database.on_primary(query)}


def statuses_by_server(answers: list[Sent]) -> dict[str, Counter[int]]:
    found: dict[str, Counter[int]] = {}
    for answer in answers:
        found.setdefault(answer.server, Counter())[answer.status] += 1
    return found


def test_postgresql_stopped_and_restarted_under_unlocks_answers_only_2xx_and_503_and_loses_nothing(
    site: Site,
) -> None:
    page_answers: dict[str, Any] = {}
    with UnlockStream(site.servers, site.game_key, site.players) as stream:
        time.sleep(BEFORE_SECONDS)
        site.database.halt()
        stopped_at = time.monotonic()
        # While it is down, pages and the admin answer 503 too, a signed-in one included.
        gunicorn_server = site.servers[0]
        cookie = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={site.session}"}
        page_answers["page"] = send(gunicorn_server, "GET", "/leaderboards/")
        page_answers["admin, signed in"] = send(gunicorn_server, "GET", "/admin/", headers=cookie)
        time.sleep(max(0.0, DOWN_SECONDS - (time.monotonic() - stopped_at)))
        site.database.resume()
        back_at = time.monotonic()
        time.sleep(AFTER_SECONDS)
    answers = stream.answers
    logs = {server.name: server.log.read_text(errors="replace") for server in site.servers}

    by_server = statuses_by_server(answers)
    strays = [(a.server, a.status, a.body[:300]) for a in answers if a.status not in (200, 201, 503)]
    assert strays == [], f"{by_server}: {strays[:5]}"
    for server in site.servers:
        # The outage was felt by both servers, and answered as one.
        assert by_server[server.name][503] > 0, by_server
        refused = [a for a in answers if a.server == server.name and a.status == 503]
        assert all(a.retry_after and int(a.retry_after) > 0 for a in refused)
        assert all(json.loads(a.body)["error"]["code"] == "unavailable" for a in refused)
        # Back within RECOVERY_SECONDS of the restart: nothing sent after that was refused.
        late = [a for a in answers if a.server == server.name and a.sent_at >= back_at + RECOVERY_SECONDS]
        assert len(late) > RATE_PER_SERVER, (server.name, len(late))
        assert {a.status for a in late} <= {200, 201}, (server.name, Counter(a.status for a in late))
        # One warning line per refused request: no error, no traceback.
        assert "Internal Server Error" not in logs[server.name]
        assert "Traceback" not in logs[server.name], logs[server.name][-3000:]
    for what, response in page_answers.items():
        assert response.status == 503, (what, response.data[:300])
        assert response.getheader("Content-Type").startswith("text/plain")
        assert int(response.getheader("Retry-After")) > 0

    # Every unlock acknowledged is stored, and every total is its unlocks' sum.
    acknowledged = {a.pair for a in answers if a.status in (200, 201)}
    assert len(acknowledged) > 2 * RATE_PER_SERVER * BEFORE_SECONDS
    stored = set(
        site.database.on_primary(
            "SELECT u.player_id::text, a.api_name FROM achievements_unlock u "
            "JOIN achievements_achievement a ON a.id = u.achievement_id"
        )
    )
    assert acknowledged <= stored, f"{len(acknowledged - stored)} acknowledged unlocks lost"
    summed = points_and_counts(
        site,
        "SELECT u.player_id, sum(a.points), count(*) FROM achievements_unlock u "
        "JOIN achievements_achievement a ON a.id = u.achievement_id GROUP BY u.player_id",
    )
    assert len(summed) == PLAYERS
    assert points_and_counts(site, "SELECT player_id, points, achievement_count FROM stats_playergamestats") == summed
    assert points_and_counts(site, "SELECT player_id, points, achievement_count FROM stats_playertotals") == summed

    report(answers, stopped_at, back_at, acknowledged, stored)


def report(answers: list[Sent], stopped_at: float, back_at: float, acknowledged: set[Any], stored: set[Any]) -> None:
    """The figures docs/deployment.md quotes (shown with `pytest -s`)."""
    for server, statuses in sorted(statuses_by_server(answers).items()):
        first_back = min(
            (a.answered_at for a in answers if a.server == server and a.status in (200, 201) and a.sent_at >= back_at),
            default=float("nan"),
        )
        slowest_refusal = max(a.answered_at - a.sent_at for a in answers if a.server == server and a.status == 503)
        print(
            f"{server}: {dict(statuses)}; first 2xx {first_back - back_at:.2f} s after the restart; "
            f"slowest 503 {slowest_refusal:.2f} s"
        )
    rankless = sum(b'"rank_unavailable"' in a.body for a in answers if a.status in (200, 201))
    print(
        f"down {back_at - stopped_at:.1f} s; {len(acknowledged)} unlocks acknowledged, "
        f"{len(acknowledged - stored)} lost; {len(stored)} stored; {rankless} answered without a rank"
    )
