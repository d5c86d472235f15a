"""The production processes, started as subprocesses and always stopped again.

Each server runs in its own session (process group), so stopping it reaches the workers
it forked too, and nothing else on the machine. `Servers` is a context manager: leaving it
by any road (an error, Ctrl-C, SIGTERM turned into SystemExit) stops everything it started.
"""

from __future__ import annotations

import http.client
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from bench.config import ROOT, Config

PYTHON = sys.executable
BIN = Path(PYTHON).parent
# As many open files as we may have: 10,000 sockets need 10,000 descriptors on each side.
WANTED_FILES = 65_536


def raise_file_limit() -> int:
    """Lift this process's open-file limit as far as allowed; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for target in (WANTED_FILES, hard):
        try:
            # Raising the hard limit needs privilege; without it, the soft one goes up to it.
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, max(target, hard)))
            return target
        except (ValueError, OSError):
            continue
    return soft


class CommandError(RuntimeError):
    pass


def manage(cfg: Config, *args: str, timeout: float = 600) -> str:
    """Run a management command with the bench's environment; returns its stdout."""
    done = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=cfg.server_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode:
        raise CommandError(f"manage.py {' '.join(args[:1])} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def last_line(output: str) -> str:
    return output.strip().splitlines()[-1].strip()


def management_commands(cfg: Config) -> set[str]:
    return set(manage(cfg, "help", "--commands").split())


@dataclass
class Server:
    name: str
    command: list[str]
    log: Path
    process: subprocess.Popen | None = None
    ready: Callable[[], bool] = lambda: True  # does it answer yet?
    reported_dead: bool = False

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class Servers:
    """The run's server processes, by name; stopped on exit, whatever happened."""

    def __init__(self, cfg: Config, log_dir: Path) -> None:
        self.cfg = cfg
        self.log_dir = log_dir
        self.running: dict[str, Server] = {}

    def __enter__(self) -> Servers:
        # Ctrl-C arrives as KeyboardInterrupt; a plain `kill` should clean up just as well.
        signal.signal(signal.SIGTERM, _exit_on_signal)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop_all()

    def start(self, name: str, command: list[str], env: dict[str, str] | None = None) -> Server:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        server = Server(name, command, self.log_dir / f"{name}.log")
        # Tells the processes' connections apart in pg_stat_activity.
        env = {"DB_APPLICATION_NAME": f"bench-{name}", **(env or {})} | self.cfg.server_environment()
        with server.log.open("w") as log:
            server.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=raise_file_limit,
            )
        self.running[name] = server
        return server

    def stop(self, name: str) -> None:
        server = self.running.pop(name, None)
        if server is not None and server.process is not None:
            _stop_groups([server.process])

    def stop_all(self) -> None:
        """SIGTERM every server at once, then SIGKILL what is left after a grace period."""
        processes = [server.process for server in self.running.values() if server.process is not None]
        self.running.clear()
        _stop_groups(processes)

    # --- the processes of the production stack -------------------------------------------
    # Each is launched without waiting (they boot while the data loads); `wait_ready` then
    # waits for every one of them to answer.

    def start_gunicorn(
        self, workers: int, *, name: str = "gunicorn", port: int = 0, app: str = "config.wsgi:application"
    ) -> Server:
        """The app's gunicorn; or, with the same flags, another WSGI `app` on `port` (the
        plain DRF app, bench/plain_wsgi.py)."""
        port = port or self.cfg.http_port
        server = self.start(
            name,
            [
                str(BIN / "gunicorn"),
                app,
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--worker-class",
                "sync",
                "--access-logfile",
                "-",
                "--error-logfile",
                "-",
                # Its default control socket is one path per user: two gunicorns would collide.
                "--no-control-socket",
                # A saturation run queues 32 connections on a few workers: none should be refused.
                "--backlog",
                "2048",
            ],
        )
        server.ready = lambda: http_ok(port, "/bench/noop")
        return server

    def start_daphne(self) -> Server:
        server = self.start(
            "daphne",
            [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(self.cfg.ws_port), "config.asgi:application"],
            # As the README's production command runs it: Daphne runs each sync call in a
            # thread of its own, and only the pool bounds their connections.
            env={"DB_POOL_MAX_SIZE": "10"},
        )
        # Daphne serves the same Django app over HTTP: an answer means the app is loaded.
        server.ready = lambda: http_ok(self.cfg.ws_port, "/bench/noop")
        return server

    def start_celery(self) -> Server:
        server = self.start(
            "celery",
            # --purge: messages a killed earlier run left in the bench's own queue.
            # A node name of its own: two runs on one machine (their own queues) would
            # otherwise both be celery@<host>, whose control queue only one may hold.
            [
                *(str(BIN / "celery"), "-A", "config", "worker", "-l", "warning", "-c", "1", "--purge"),
                *("-n", f"{self.cfg.celery_queue}@%h"),
            ],
        )
        server.ready = lambda: queue_consumers(self.cfg) > 0
        return server

    def start_relay(self) -> Server:
        # It has no endpoint to ask; being alive when the others are ready is what we check.
        return self.start("relay_outbox", [PYTHON, "manage.py", "relay_outbox"])

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        for server in self.running.values():
            while not server.ready():
                if not server.alive():
                    raise CommandError(f"{server.name} exited at start:\n{server.log_tail()}")
                if time.monotonic() > deadline:
                    raise CommandError(f"{server.name} did not answer within {timeout:.0f} s:\n{server.log_tail()}")
                time.sleep(0.2)
        self.check_alive()

    # --- watching them -----------------------------------------------------------------

    def group_ids(self) -> set[int]:
        return {server.pid for server in self.running.values() if server.alive()}

    def cpu_seconds(self) -> float:
        """CPU time used so far by every process of every server (workers included)."""
        return sum(cpu for _, cpu in _processes_in(self.group_ids()))

    def settle(self, *, window: float = 1.0, quiet_share: float = 0.05, timeout: float = 120) -> float:
        """Wait until the servers are idle (background work of the last section done, e.g.
        Celery's backlog of announcements), so it does not eat into the next measurement.
        Quiet: under `quiet_share` of the machine's cores busy over `window` seconds.
        Returns the seconds waited."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            before = self.cpu_seconds()
            time.sleep(window)
            if self.cpu_seconds() - before < quiet_share * window * (os.cpu_count() or 1):
                break
        return round(time.monotonic() - started, 1)

    def check_alive(self) -> None:
        dead = self.newly_dead()
        if dead:
            raise CommandError("; ".join(dead))

    def newly_dead(self) -> list[str]:
        """Servers that exited since the last call, each said once with how it ended and
        the end of its log."""
        dead = []
        for server in self.running.values():
            if server.alive() or server.reported_dead:
                continue
            server.reported_dead = True
            assert server.process is not None
            code = server.process.returncode
            how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
            dead.append(f"{server.name} died ({how}): {server.log_tail(500).strip()}")
        return dead


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _stop_groups(processes: list[subprocess.Popen]) -> None:
    """SIGTERM the servers' process groups, then SIGKILL whatever is left after 10 s."""
    groups = {process.pid for process in processes}
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        for group in groups:
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            for process in processes:
                process.poll()  # reap the leaders
            # The leaders may be gone while the workers they forked linger briefly.
            if not _processes_in(groups):
                return
            time.sleep(0.1)


def _processes_in(groups: set[int]) -> list[tuple[int, float]]:
    """(pid, CPU seconds) of every process whose process group is one of `groups`."""
    found = []
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces: fields are counted after its closing parenthesis.
        fields = raw[raw.rindex(")") + 2 :].split()
        state, pgrp, utime, stime = fields[0], int(fields[2]), int(fields[11]), int(fields[12])
        # A zombie has finished (its parent has not reaped it yet): it no longer counts.
        if pgrp in groups and state != "Z":
            found.append((int(entry), (utime + stime) / ticks))
    return found


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def http_ok(port: int, path: str) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", path)
        ok = connection.getresponse().status == 200
        connection.close()
        return ok
    except OSError:
        return False


def queue_consumers(cfg: Config) -> int:
    """Consumers on the bench's Celery queue, asked of the broker itself."""
    from kombu import Connection

    try:
        with Connection(cfg.broker_url, connect_timeout=2) as connection:
            channel = connection.channel()
            _, _, consumers = channel.queue_declare(cfg.celery_queue, passive=True)
            return consumers
    except Exception:
        # The worker declares its queue on start; until then a passive declare fails.
        return 0
