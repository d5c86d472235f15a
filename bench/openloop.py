"""An open-loop load generator: requests fired at a fixed rate, whatever the server does.

wrk keeps N requests in flight and waits for each answer before sending the next, so a
slow answer delays the requests behind it and hides its own cost ("coordinated omission").
Here request i is due at start + i / rate and is sent then, on an idle keep-alive connection
or a new one, and its latency is counted from when it was due. The server's 99th
percentile at a given rate is what a game server sending at that rate would see.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.stats import percentiles

REQUEST_TIMEOUT = 10.0


@dataclass
class Shot:
    index: int
    due: float  # loop time the request was due
    sent: float = 0.0  # loop time it was written
    status: int = 0  # 0: no answer (connection error or timeout)
    latency_ms: float = 0.0  # from due to the end of the answer
    body: bytes = b""


@dataclass
class OpenLoopResult:
    rate: float
    seconds: float
    shots: list[Shot] = field(default_factory=list)
    generator_cpu_seconds: float = 0.0
    max_send_lag_ms: float = 0.0  # how late the generator itself sent the worst request

    def summary(self, expected_status: int) -> dict[str, Any]:
        answered = [shot.latency_ms for shot in self.shots if shot.status]
        unexpected = [shot for shot in self.shots if shot.status != expected_status]
        return {
            "rate": self.rate,
            "requests": len(self.shots),
            "throughput": round(len(self.shots) / self.seconds, 1) if self.seconds else 0.0,
            **percentiles(answered),
            "errors": len(unexpected),
            "statuses": _count_statuses(unexpected),
            "generator_cpu_seconds": round(self.generator_cpu_seconds, 2),
            "generator_cpu_share": round(self.generator_cpu_seconds / self.seconds, 2) if self.seconds else 0.0,
            "max_send_lag_ms": round(self.max_send_lag_ms, 2),
        }


def _count_statuses(shots: list[Shot]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for shot in shots:
        counts[str(shot.status)] = counts.get(str(shot.status), 0) + 1
    return counts


def get(path: str, headers: dict[str, str]) -> bytes:
    """An HTTP/1.1 keep-alive GET as bytes."""
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1"] + [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def post(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """An HTTP/1.1 keep-alive POST as bytes."""
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Pool:
    """Idle keep-alive connections to one server; a new one whenever none is idle."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def exchange(self, request: bytes, shot: Shot) -> None:
        loop = asyncio.get_running_loop()
        reader, writer = self.idle.pop() if self.idle else await asyncio.open_connection("127.0.0.1", self.port)
        try:
            shot.sent = loop.time()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status, length, keep = _parse_head(head)
            shot.body = await reader.readexactly(length)
            shot.status = status
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            writer.close()
            return
        if keep:
            self.idle.append((reader, writer))
        else:
            # gunicorn's sync workers close after every answer.
            writer.close()

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


def _parse_head(head: bytes) -> tuple[int, int, bool]:
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    if "content-length" not in headers:
        raise ValueError("answers without Content-Length are not supported")
    keep = headers.get("connection") != "close" and lines[0].startswith("HTTP/1.1")
    return status, int(headers["content-length"]), keep


async def fire(
    port: int,
    *,
    rate: float,
    seconds: float,
    request_for: Callable[[int], bytes],
) -> OpenLoopResult:
    """Send request_for(i) at start + i / rate for i in range(rate * seconds)."""
    loop = asyncio.get_running_loop()
    pool = Pool(port)
    total = int(rate * seconds)
    result = OpenLoopResult(rate=rate, seconds=seconds)
    requests = [request_for(i) for i in range(total)]  # built ahead: none of it on the clock
    cpu_before = time.process_time()
    start = loop.time() + 0.05
    tasks = []

    async def one(shot: Shot, request: bytes) -> None:
        try:
            await asyncio.wait_for(pool.exchange(request, shot), REQUEST_TIMEOUT)
        except TimeoutError:
            shot.status = 0
        shot.latency_ms = (loop.time() - shot.due) * 1000

    for i in range(total):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        result.max_send_lag_ms = max(result.max_send_lag_ms, (loop.time() - due) * 1000)
        shot = Shot(index=i, due=due)
        result.shots.append(shot)
        tasks.append(asyncio.create_task(one(shot, requests[i])))
    await asyncio.gather(*tasks)
    result.generator_cpu_seconds = time.process_time() - cpu_before
    pool.close()
    return result
