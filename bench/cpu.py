"""CPU time by process over a measured window, for "ms of CPU per unlock" per process.

Every process of the pipeline is found in /proc and read there (user + system time, the
same figure psutil's cpu_times() gives, without its per-call overhead):

- the bench's servers (gunicorn master and workers, Daphne, the Celery worker and its pool
  child, the outbox relay): every process of each server's process group;
- PostgreSQL: the backends serving the bench's database, known by their process title
  ("postgres: ... <user> <database> <client> <state>"). The server's shared processes
  (walwriter, checkpointer, background writer, autovacuum) are left out: on this machine
  they also serve other databases. A backend that ends inside the window (a connection
  opened per task) counts up to the last poll that saw it (polls every POLL_SECONDS);
- Redis: the redis-server listening on the bench's port, and the broker: RabbitMQ's
  beam.smp. Both serve everything on the machine, so they are exact only when nothing else
  uses them; the report marks them "shared";
- the load generator: this process (minus the poller's own thread) and the tools it ran
  and reaped in the window (wrk), from getrusage;
- the machine as a whole, from /proc/stat: its busy CPU beyond all of the above ("other":
  PostgreSQL's shared processes, the kernel's work, anything else running), and the share
  of the cores' time spent waiting on the disk (iowait: an unlock's commit waits for its
  WAL flush) or taken by the host (steal). Runs of the same code that differ show here.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

POLL_SECONDS = 0.25
TICKS = os.sysconf("SC_CLK_TCK")
# Roles in report order; the total is every server's, the load generator shown beside it.
SERVER_ROLES = ("web", "postgres", "redis", "relay", "celery", "daphne", "broker")
SHARED_ROLES = ("redis", "broker")
# The bench's server names (bench.servers) and the role each one plays.
SERVER_NAMES = {
    "gunicorn": "web",
    "gunicorn_plain": "web_plain",
    "daphne": "daphne",
    "celery": "celery",
    "relay_outbox": "relay",
}


@dataclass
class _Proc:
    role: str | None  # None: not part of the pipeline, never read again
    cpu: float = 0.0


def _stat(pid: str) -> tuple[str, int, float] | None:
    """(command name, process group, CPU seconds) of a live process, or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # finished; its parent has not reaped it yet
        return None
    return name, int(fields[2]), (int(fields[11]) + int(fields[12])) / TICKS


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class Meter:
    """Finds the pipeline's processes; `window()` measures CPU by role between two points."""

    def __init__(self, groups: Callable[[], dict[int, str]], database: str, redis_port: int) -> None:
        self.groups = groups  # process group id -> server name, as running now
        self.database = database
        self.redis_port = redis_port

    def classify(self, pid: str, name: str, group: int, groups: dict[int, str]) -> str | None:
        if group in groups:
            return SERVER_NAMES.get(groups[group], groups[group])
        if name == "postgres":
            # A backend's title: "postgres: 15/main: <user> <database> <client> <state>".
            return "postgres" if f" {self.database} " in f" {_cmdline(pid)} " else None
        if name == "redis-server":
            return "redis" if f":{self.redis_port}" in _cmdline(pid) else None
        if name == "beam.smp":
            return "broker"
        return None

    def window(self) -> Window:
        return Window(self)


@dataclass
class Window:
    """CPU seconds by role from its creation to `stop()`; a thread polls in between so
    processes that end inside the window still count."""

    meter: Meter
    seen: dict[str, _Proc] = field(default_factory=dict)
    baseline: dict[str, float] = field(default_factory=dict)
    poller_cpu: float = 0.0

    def __post_init__(self) -> None:
        self.groups = self.meter.groups()
        self.poll()
        self.baseline = {pid: proc.cpu for pid, proc in self.seen.items() if proc.role}
        self.started = time.perf_counter()
        self.own = _own_cpu()
        self.machine = _machine()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="cpu-poller", daemon=True)
        self.thread.start()

    def poll(self) -> None:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            known = self.seen.get(pid)
            if known is not None and known.role is None:
                continue
            stat = _stat(pid)
            if stat is None:
                continue
            name, group, cpu = stat
            if known is None:
                known = self.seen[pid] = _Proc(self.meter.classify(pid, name, group, self.groups))
            known.cpu = cpu

    def _run(self) -> None:
        while not self.stopping.wait(POLL_SECONDS):
            self.poll()
        self.poller_cpu = time.thread_time()

    def stop(self, *, unlocks: int) -> dict[str, Any]:
        """CPU seconds by role, and ms per unlock, over the window."""
        self.stopping.set()
        self.thread.join()
        self.poll()
        seconds = time.perf_counter() - self.started
        cpu = dict.fromkeys(SERVER_ROLES, 0.0)
        backends = 0
        for pid, proc in self.seen.items():
            if proc.role is None:
                continue
            cpu[proc.role] = cpu.get(proc.role, 0.0) + proc.cpu - self.baseline.get(pid, 0.0)
            backends += proc.role == "postgres"
        own = _own_cpu() - self.own
        cpu["loadgen"] = own - self.poller_cpu
        servers = sum(cpu[role] for role in SERVER_ROLES)
        busy, iowait, steal = (now - then for now, then in zip(_machine(), self.machine, strict=True))
        # Never below zero: /proc/stat and the processes' own counters are read moments apart.
        cpu["other"] = max(busy - servers - own, 0.0)
        cores = seconds * (os.cpu_count() or 1)
        per_unlock = {role: round(1000 * value / unlocks, 2) if unlocks else None for role, value in cpu.items()}
        return {
            "machine": {
                "busy_seconds": round(busy, 3),
                "iowait_share": round(iowait / cores, 3),
                "steal_share": round(steal / cores, 3),
            },
            "window_seconds": round(seconds, 2),
            "unlocks": unlocks,
            "cpu_seconds": {role: round(value, 3) for role, value in cpu.items()},
            "ms_per_unlock": per_unlock,
            "total_ms_per_unlock": round(1000 * servers / unlocks, 2) if unlocks else None,
            "with_loadgen_ms_per_unlock": round(1000 * (servers + cpu["loadgen"]) / unlocks, 2) if unlocks else None,
            "postgres_backends": backends,
            "shared": list(SHARED_ROLES),
        }


def _machine() -> tuple[float, float, float]:
    """The machine's CPU seconds so far, all cores: busy (user, nice, system, irq,
    softirq), waiting on I/O, and stolen by the host."""
    with open("/proc/stat") as stat:
        user, nice, system, _idle, iowait, irq, softirq, steal = (int(v) for v in stat.readline().split()[1:9])
    return (user + nice + system + irq + softirq) / TICKS, iowait / TICKS, steal / TICKS


def _own_cpu() -> float:
    """This process's CPU (all threads) and that of the children it reaped (wrk)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
