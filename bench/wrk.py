"""Closed-loop throughput and latency with wrk, through the Lua scripts in bench/wrk/.

Saturation is wrk's `-t2 -c32`; "moderate load" is `-t1 -c4`, few enough connections that
the reads' latency is theirs, not a queue's. Figures come from the scripts' done() hook
(bench/wrk/report.lua), p95 included; every one carries wrk's own CPU time.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from typing import Any

from bench.tools import run_measured

SATURATION = (2, 32)  # threads, connections
MODERATE = (1, 4)


class WrkError(RuntimeError):
    pass


@dataclass(frozen=True)
class WrkResult:
    threads: int
    connections: int
    requests: int
    seconds: float
    throughput: float  # requests/s
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    # Socket errors (connect, read, write, timeout) and answers the script did not expect
    # (non-2xx/3xx, or a 2xx of the wrong kind, e.g. 200 "already unlocked" for a new pair).
    socket_errors: int
    non_2xx: int
    unexpected: int
    last_unexpected_status: int
    generator_cpu_seconds: float
    generator_cpu_share: float  # wrk's CPU seconds per wall second
    next: int  # first pair sequence number not used (unlock scripts)

    @property
    def errors(self) -> int:
        # A non-2xx answer is also unexpected: count each failed request once.
        return self.socket_errors + max(self.non_2xx, self.unexpected)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"errors": self.errors}


def available() -> bool:
    return shutil.which("wrk") is not None


def run(
    script: str,
    url: str,
    args: list[str],
    *,
    seconds: int,
    shape: tuple[int, int] = SATURATION,
) -> WrkResult:
    threads, connections = shape
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "-s",
        f"bench/wrk/{script}",
        url,
        "--",
        *args,
    ]
    measured = run_measured(command, timeout=seconds + 60)
    line = next((line for line in measured.stdout.splitlines() if line.startswith("BENCH ")), None)
    if measured.returncode or line is None:
        raise WrkError(f"wrk failed ({measured.returncode}): {measured.stderr[-2000:]}{measured.stdout[-2000:]}")
    raw = json.loads(line.removeprefix("BENCH "))
    elapsed = raw["duration_us"] / 1e6
    return WrkResult(
        threads=threads,
        connections=connections,
        requests=raw["requests"],
        seconds=round(elapsed, 2),
        throughput=round(raw["requests"] / elapsed, 1) if elapsed else 0.0,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p95_ms=raw["p95_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        socket_errors=raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"],
        non_2xx=raw["status_errors"],
        unexpected=raw["unexpected"],
        last_unexpected_status=raw["last_unexpected_status"],
        generator_cpu_seconds=measured.cpu_seconds,
        generator_cpu_share=measured.cpu_share,
        next=raw["next"],
    )
