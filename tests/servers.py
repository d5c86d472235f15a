"""Real server subprocesses (Daphne, gunicorn; Celery workers and beat, the outbox relay)
against the test database, for tests that must cross a process boundary: live events
between processes, the ASGI connection pool, the browser tests, many processes at once.

The servers read the database pytest-django created, so a test using them must be
transactional (`django_db(transaction=True)`): they only see what committed.
"""

from __future__ import annotations

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

from tests.binaries import redis_bin

VENV_BIN = Path(sys.executable).parent
STARTUP_SECONDS = 20.0


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


def shared_database_url(name: str | None = None) -> str:
    """The URL of the test database pytest-django created (its NAME is the test one now),
    or of database `name` on the same server.

    HOST may be a directory, the server's UNIX socket (the embedded PostgreSQL listens on
    nothing else): percent-encoded, it stays one host for dj_database_url and libpq alike.
    """
    db = settings.DATABASES["default"]
    credentials = quote(db.get("USER") or "", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    user = f"{credentials}@" if credentials else ""
    host = quote(db.get("HOST") or "127.0.0.1", safe="")
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{user}{host}{port}/{quote(name or db['NAME'], safe='')}"


NOT_INHERITED = ("CELERY_BROKER_URL", "TEST_DATABASE_NAME", "DB_POOL_MAX_SIZE", "QUESTBOARD_ASGI")


def server_environment() -> dict[str, str]:
    # Not inherited: what a test (or an in-process import of config.asgi) set for this
    # process; each server is told its own broker, test database and pool.
    env = {key: value for key, value in os.environ.items() if key not in NOT_INHERITED}
    env.update(
        DATABASE_URL=shared_database_url(),
        REDIS_URL=settings.REDIS_URL,
        FAST_PASSWORD_HASHER="1",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SETTINGS_MODULE="config.settings",
        SECRET_KEY=settings.SECRET_KEY,
        JWT_SIGNING_KEY=settings.SIMPLE_JWT["SIGNING_KEY"],
        HTTPS_ONLY="0",
        DB_CONN_MAX_AGE="0",  # no connection outlives a request: the test database is dropped at the end
        PYTHONUNBUFFERED="1",
    )
    # The suite's generous budgets (tests/settings.py); a test of the limits passes others.
    env.update({name: getattr(settings, name) for name in RATE_LIMIT_SETTINGS})
    return env


RATE_LIMIT_SETTINGS = (
    "RATE_LIMIT_PLAYER",
    "RATE_LIMIT_GAME_KEY",
    "RATE_LIMIT_ANONYMOUS",
    "RATE_LIMIT_SIGN_IN",
    "RATE_LIMIT_SIGN_IN_USERNAME",
    "RATE_LIMIT_SIGN_UP",
    "RATE_LIMIT_EMBEDS",
)


def answers_http(server: Server) -> bool:
    try:
        with urllib.request.urlopen(f"{server.http}/api/v1/games/", timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def daphne(port: int) -> list[str]:
    return [str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"]


def gunicorn(port: int, workers: int = 1) -> list[str]:
    return [
        str(VENV_BIN / "gunicorn"),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        # Several gunicorns on one machine (the tests', other test runs') would share the
        # one default control socket path; nothing here uses it.
        "--no-control-socket",
        "config.wsgi:application",
    ]


@dataclass(frozen=True)
class Background:
    """A process that serves no HTTP (a Celery worker or beat, the outbox relay) and the
    text its log shows once it works; "" for one that is ready as soon as it runs."""

    command: list[str]
    ready: str = ""


def celery(*arguments: str) -> list[str]:
    return [str(VENV_BIN / "celery"), "-A", "config", *arguments]


def relay_outbox() -> list[str]:
    return [sys.executable, "manage.py", "relay_outbox"]


def delete_queue(name: str) -> None:
    """Delete a Celery queue a test declared on the broker, and whatever is left in it."""
    from kombu import Connection

    with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as connection:
        connection.default_channel.queue_delete(name)


def started_working(server: Server, ready: str) -> bool:
    return ready in server.log.read_text(errors="replace")


@contextmanager
def running(
    commands: dict[str, Callable[[int], list[str]]],
    logs: Path,
    environment: dict[str, str] | None = None,
    *,
    background: dict[str, Background] | None = None,
    startup_seconds: float = STARTUP_SECONDS,
) -> Iterator[list[Server]]:
    """Start one server per command (each on a free port, all against the test database
    and Redis, with `environment` on top) and each `background` process (port 0), wait
    until every server answers HTTP and every background process logged its `ready`
    text (all within `startup_seconds`), and always terminate them all after."""
    env = {**server_environment(), **(environment or {})}
    started: list[Server] = []
    waits: list[tuple[Server, Callable[[Server], bool], str]] = []
    try:
        for name, command in commands.items():
            port = free_port()
            server = start_process(name, port, command(port), logs, env)
            started.append(server)
            waits.append((server, answers_http, "answer HTTP"))
        for name, process in (background or {}).items():
            server = start_process(name, 0, process.command, logs, env)
            started.append(server)
            waits.append((server, lambda server, ready=process.ready: started_working(server, ready), "start"))
        deadline = time.monotonic() + startup_seconds
        for server, ready, what in waits:
            while not ready(server):
                if server.process.poll() is not None:
                    pytest.fail(f"{server.name} exited with {server.process.returncode}:\n{server.output()}")
                if time.monotonic() > deadline:
                    pytest.fail(f"{server.name} did not {what} within {startup_seconds} s:\n{server.output()}")
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


def start_process(name: str, port: int, command: list[str], logs: Path, env: dict[str, str]) -> Server:
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT)
    return Server(name, port, process, log)


def wait_for(condition: Callable[[], bool], what: str, servers: list[Server], *, seconds: float) -> None:
    """Wait until `condition` holds; fail saying `what` did not happen (with the servers'
    output) after `seconds`, or at once if one of `servers` exited."""
    deadline = time.monotonic() + seconds
    while not condition():
        for server in servers:
            if server.process.poll() is not None:
                pytest.fail(f"{server.name} exited with {server.process.returncode}:\n{server.output()}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {seconds} s:\n" + "\n".join(s.output()[-1500:] for s in servers))
        time.sleep(0.2)


def post_json(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **headers}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


class OwnRedis:
    """A Redis server of the test's own on a free port, to stop, restart or pause on
    purpose (never the machine's). It keeps nothing on disk: a restart starts empty."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        command = [
            str(redis_bin("redis-server")),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        log = (self.workdir / f"redis-{self.port}.log").open("ab")
        self.process = subprocess.Popen(command, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"redis-server on port {self.port} did not start")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def pause(self, seconds: float) -> None:
        """Make it unresponsive: it accepts connections and answers no command (not even an
        unpause) until `seconds` have passed."""
        import redis

        redis.Redis(port=self.port).execute_command("CLIENT", "PAUSE", int(seconds * 1000), "ALL")
