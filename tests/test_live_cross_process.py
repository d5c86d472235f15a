"""Live events across processes, as production serves them (docs/live.md, "Serving"):
WebSockets held by a Daphne process (A), the unlock served by a gunicorn WSGI process (B).
The event must travel through the shared Redis channel layer to reach A's sockets.

Needs PostgreSQL and Redis: the two servers are real subprocesses reading the test
database that pytest-django created (so the test is transactional: they only see what
committed) and sharing the test run's Redis.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from rest_framework_simplejwt.tokens import RefreshToken

from tests.conftest import achievement
from tests.helpers import UNLOCK_URL, give
from tracker.models import Game, Player

websockets_client = pytest.importorskip("websockets.asyncio.client", reason="needs the websockets package")

VENV_BIN = Path(sys.executable).parent
STARTUP_SECONDS = 20.0
DELIVERY_SECONDS = 1.0

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="needs PostgreSQL (DATABASE_URL): server subprocesses must share the test database",
    ),
    pytest.mark.skipif(
        not settings.REDIS_URL, reason="needs Redis (REDIS_URL): the only channel layer that crosses processes"
    ),
]


@dataclass(frozen=True)
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def shared_database_url() -> str:
    """The URL of the test database pytest-django created (its NAME is the test one now)."""
    db = settings.DATABASES["default"]
    credentials = quote(db.get("USER") or "", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = f"{credentials}@" if credentials else ""
    return f"postgres://{host}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def server_environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("CELERY_BROKER_URL", "TEST_DATABASE_NAME")}
    env.update(
        DATABASE_URL=shared_database_url(),
        REDIS_URL=settings.REDIS_URL,
        FAST_PASSWORD_HASHER="1",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SETTINGS_MODULE="tracker.settings",
        SECRET_KEY=settings.SECRET_KEY,
        JWT_SIGNING_KEY=settings.SIMPLE_JWT["SIGNING_KEY"],
        DB_CONN_MAX_AGE="0",  # no connection outlives a request: the test database is dropped at the end
        PYTHONUNBUFFERED="1",
    )
    return env


def answers_http(server: Server) -> bool:
    try:
        with urllib.request.urlopen(f"{server.http}/api/v1/games/", timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def daphne(port: int) -> list[str]:
    return [str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "tracker.asgi:application"]


def gunicorn(port: int) -> list[str]:
    return [str(VENV_BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1", "tracker.wsgi:application"]


@contextmanager
def running(commands: dict[str, Callable[[int], list[str]]], logs: Path) -> Iterator[list[Server]]:
    """Start one server per command (each on a free port, all against the test database
    and Redis), wait until every one answers HTTP, and always terminate them after."""
    env = server_environment()
    started: list[Server] = []
    try:
        for name, command in commands.items():
            port = free_port()
            log = logs / f"{name}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    command(port), cwd=settings.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT
                )
            started.append(Server(name, port, process, log))
        deadline = time.monotonic() + STARTUP_SECONDS
        for server in started:
            while not answers_http(server):
                if server.process.poll() is not None:
                    pytest.fail(f"{server.name} exited with {server.process.returncode}:\n{server.output()}")
                if time.monotonic() > deadline:
                    pytest.fail(f"{server.name} did not answer HTTP within {STARTUP_SECONDS} s:\n{server.output()}")
                time.sleep(0.1)
        yield started
    finally:
        for server in started:
            server.process.terminate()
        for server in started:
            try:
                server.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait(timeout=5)


@pytest.fixture
def servers(rank_index: Any, tmp_path: Path) -> Iterator[list[Server]]:
    """A: Daphne (ASGI, holds the sockets). B: gunicorn (WSGI, serves the API). The Redis
    rank index is built and kept true, as the servers read ranks from it."""
    with running({"daphne": daphne, "gunicorn": gunicorn}, tmp_path) as started:
        yield started


def post_json(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **headers}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


async def next_event(connection: Any, event: str, deadline: float) -> dict[str, Any]:
    """The next frame of type `event` before `deadline` (loop time); other frames are skipped."""
    loop = asyncio.get_running_loop()
    while True:
        frame = json.loads(await asyncio.wait_for(connection.recv(), timeout=max(0.0, deadline - loop.time())))
        if frame["type"] == event:
            return frame["data"]


def test_an_unlock_served_by_one_process_reaches_sockets_held_by_another(
    servers: list[Server], alice: Player, bob: Player, game: Game, game_key: str
) -> None:
    sockets, api = servers
    give(bob, achievement(game, "SECRET_ENDING"))  # bob 50
    give(alice, achievement(game, "FIRST_FLIGHT"))  # alice 10
    token = str(RefreshToken.for_user(alice).access_token)
    unlock_body = {"player_id": str(alice.pk), "achievement": "SECRET_ENDING"}
    key_header = {"Authorization": f"Api-Key {game_key}"}
    origin = sockets.http

    async def scenario() -> None:
        async with (
            websockets_client.connect(f"{sockets.ws}/ws/leaderboards/{game.pk}/", origin=origin) as board,
            websockets_client.connect(f"{sockets.ws}/ws/me/?token={token}", origin=origin) as me,
        ):
            for connection in (board, me):
                assert json.loads(await asyncio.wait_for(connection.recv(), 5))["type"] == "subscribed"

            loop = asyncio.get_running_loop()
            sent = loop.time()
            status, body = await asyncio.to_thread(post_json, f"{api.http}{UNLOCK_URL}", unlock_body, key_header)
            assert status == 201, body
            assert body["new_rank"] == 1
            deadline = sent + DELIVERY_SECONDS

            moved = await next_event(board, "leaderboard.updated", deadline)
            assert (moved["player_id"], moved["points"], moved["new_rank"], moved["rank_change"]) == (
                str(alice.pk),
                60,
                1,
                -1,
            )
            unlocked = await next_event(me, "achievement.unlocked", deadline)
            assert unlocked["player_id"] == str(alice.pk)
            assert unlocked["achievement"]["name"] == "The Truth"
            mine = await next_event(me, "leaderboard.updated", deadline)
            assert (mine["board"], mine["new_rank"], mine["rank_change"]) == ("game", 1, -1)

    try:
        asyncio.run(scenario())
    except TimeoutError:
        pytest.fail(
            f"an event did not reach Daphne's socket within {DELIVERY_SECONDS} s of the unlock.\n"
            f"daphne:\n{sockets.output()}\ngunicorn:\n{api.output()}"
        )
