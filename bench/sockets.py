"""WebSockets against the Daphne process: idle connections held, and unlock-to-socket latency.

All clients live in this one asyncio process. Every handshake sends an Origin header for the
server's own host, as a browser on the site would.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from bench import dataset, openloop
from bench.servers import rss_kib
from bench.stats import percentiles

# Handshakes in flight at once: a 10,000-long queue in this client would time out here,
# which would measure the client, not the server.
HANDSHAKES_AT_ONCE = 100
NEVER_MS = 5000.0  # an event later than this counts as never arrived


async def open_socket(url: str, origin: str) -> ClientConnection:
    """Connect and wait for the server's `subscribed` greeting (the consumer accepted)."""
    socket = await connect(url, origin=origin, ping_interval=None, open_timeout=30, close_timeout=2)
    greeting = json.loads(await asyncio.wait_for(socket.recv(), 30))
    if greeting.get("type") != "subscribed":
        await socket.close()
        raise ConnectionError(f"unexpected greeting {greeting!r}")
    return socket


async def bounded(tasks: list[Awaitable[Any]], at_once: int) -> list[Any]:
    gate = asyncio.Semaphore(at_once)

    async def one(task: Awaitable[Any]) -> Any:
        async with gate:
            return await task

    return await asyncio.gather(*(one(task) for task in tasks), return_exceptions=True)


async def hold_idle(port: int, game_id: str, count: int, daphne_pid: int) -> dict[str, Any]:
    """Open `count` connections to a board stream, hold them idle, and weigh Daphne."""
    origin = f"http://127.0.0.1:{port}"
    url = f"ws://127.0.0.1:{port}/ws/leaderboards/{game_id}/"
    rss_before = rss_kib(daphne_pid)
    started = time.perf_counter()
    cpu_before = time.process_time()
    outcomes = await bounded([open_socket(url, origin) for _ in range(count)], HANDSHAKES_AT_ONCE)
    connect_seconds = time.perf_counter() - started
    sockets = [outcome for outcome in outcomes if isinstance(outcome, ClientConnection)]
    failures = [outcome for outcome in outcomes if not isinstance(outcome, ClientConnection)]
    # Idle for a moment, then check they are all still open: held, not just opened.
    await asyncio.sleep(2)
    rss_after = rss_kib(daphne_pid)
    still_open = sum(1 for socket in sockets if socket.state.name == "OPEN")
    generator_cpu = time.process_time() - cpu_before
    await bounded([socket.close() for socket in sockets], 1000)
    held = len(sockets)
    return {
        "requested": count,
        "connected": still_open,
        "not_connected": count - still_open,
        "first_failure": repr(failures[0]) if failures else "",
        "connect_seconds": round(connect_seconds, 2),
        "throughput": round(held / connect_seconds, 1) if connect_seconds else 0.0,  # handshakes/s
        "daphne_rss_before_kib": rss_before,
        "daphne_rss_after_kib": rss_after,
        "kib_per_connection": round((rss_after - rss_before) / held, 1) if held else 0.0,
        "generator_cpu_seconds": round(generator_cpu, 2),
        "errors": count - still_open,
    }


@dataclass
class Listener:
    """One player's /ws/me/ socket and when each of their achievements arrived."""

    player: str
    socket: ClientConnection
    arrivals: dict[str, float] = field(default_factory=dict)  # api_name -> loop time
    strays: int = 0  # events for someone else, or malformed: must stay 0
    last_frame: float = 0.0  # loop time of the latest frame of any kind

    async def listen(self) -> None:
        loop = asyncio.get_running_loop()
        async for frame in self.socket:
            at = self.last_frame = loop.time()
            event = json.loads(frame)
            if event.get("type") != "achievement.unlocked":
                continue
            data = event.get("data", {})
            if data.get("player_id") != self.player:
                self.strays += 1
                continue
            self.arrivals.setdefault(data.get("achievement", {}).get("api_name"), at)


class Listeners:
    """The given players' /ws/me/ sockets, opened on entry and read until exit."""

    def __init__(self, port_ws: int, tokens: dict[str, str]) -> None:
        self.port_ws = port_ws
        self.tokens = tokens
        self.by_player: dict[str, Listener] = {}
        self.tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Listeners:
        origin = f"http://127.0.0.1:{self.port_ws}"
        players = sorted(self.tokens)
        opened = await bounded(
            [open_socket(f"ws://127.0.0.1:{self.port_ws}/ws/me/?token={self.tokens[p]}", origin) for p in players],
            HANDSHAKES_AT_ONCE,
        )
        failed = [outcome for outcome in opened if not isinstance(outcome, ClientConnection)]
        if failed:
            await bounded([o.close() for o in opened if isinstance(o, ClientConnection)], 1000)
            raise ConnectionError(f"{len(failed)} of {len(players)} player sockets did not open: {failed[0]!r}")
        self.by_player = {player: Listener(player, socket) for player, socket in zip(players, opened, strict=True)}
        self.tasks = [asyncio.create_task(listener.listen()) for listener in self.by_player.values()]
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Closing a socket while the server still forwards events to it (rank changes follow
        # each unlock) makes Daphne log an error: close once the stream has gone quiet.
        loop = asyncio.get_running_loop()
        quiet_until = loop.time() + 10
        while loop.time() < quiet_until:
            if loop.time() - max(listener.last_frame for listener in self.by_player.values()) > 1.0:
                break
            await asyncio.sleep(0.1)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await bounded([listener.socket.close() for listener in self.by_player.values()], 1000)

    def arrived(self, player: str, api_name: str) -> float | None:
        return self.by_player[player].arrivals.get(api_name)

    @property
    def strays(self) -> int:
        return sum(listener.strays for listener in self.by_player.values())


async def toasts(
    listeners: Listeners,
    port_http: int,
    *,
    key: str,
    wanted: list[tuple[str, str]],
    rate: int,
    grace_ms: float = NEVER_MS,
) -> dict[str, Any]:
    """Post the unlocks `wanted` ((player id, api_name) each, players among the listeners')
    open loop at `rate`/s, and time each from its request being sent to its
    achievement.unlocked frame on that player's socket. A toast not there `grace_ms` after
    the last request was sent is lost."""
    headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}
    strays_before = listeners.strays

    def request_for(i: int) -> bytes:
        player, api_name = wanted[i]
        body = json.dumps({"player_id": player, "achievement": api_name}).encode()
        return openloop.post("/api/v1/achievements/unlock", body, headers)

    seconds = len(wanted) / rate
    fired = await openloop.fire(port_http, rate=rate, seconds=seconds, request_for=request_for)
    created = [shot for shot in fired.shots if shot.status == 201]

    # Wait for the stragglers, up to the grace after the last request was sent.
    loop = asyncio.get_running_loop()
    last_sent = max((shot.sent for shot in created), default=loop.time())
    while loop.time() < last_sent + grace_ms / 1000:
        if all(listeners.arrived(*wanted[shot.index]) is not None for shot in created):
            break
        await asyncio.sleep(0.05)

    latencies = []
    lost = 0
    for shot in created:
        arrived = listeners.arrived(*wanted[shot.index])
        if arrived is None or (arrived - shot.sent) * 1000 > grace_ms:
            lost += 1
        else:
            latencies.append((arrived - shot.sent) * 1000)
    return {
        "rate": rate,
        "seconds": round(seconds, 2),
        "unlocks_sent": len(fired.shots),
        "unlocks_created": len(created),
        "served_per_second": round(len(created) / seconds, 1) if seconds else 0.0,
        "toasts_received": len(latencies),
        "lost": lost,
        "stray_events": listeners.strays - strays_before,
        "grace_ms": grace_ms,
        **percentiles(latencies),
        "http": fired.summary(expected_status=201),
    }


async def unlock_to_socket(
    port_http: int,
    port_ws: int,
    *,
    key: str,
    tokens: dict[str, str],
    pairs: dataset.Pairs,
    base: int,
    rate: int,
    seconds: int,
) -> dict[str, Any]:
    """Post unlocks for listening players at `rate`/s and time each one from the request
    being sent to its achievement.unlocked event arriving on that player's socket."""
    wanted = wanted_pairs(pairs, base, rate * seconds)
    async with Listeners(port_ws, tokens) as listeners:
        toasted = await toasts(listeners, port_http, key=key, wanted=wanted, rate=rate)
    http = toasted["http"]
    never, strays = toasted["lost"], toasted["stray_events"]
    return {
        "players": len(tokens),
        "rate": rate,
        "unlocks_sent": toasted["unlocks_sent"],
        "unlocks_created": toasted["unlocks_created"],
        "events_received": toasted["toasts_received"],
        "never_arrived": never,
        "stray_events": strays,
        "throughput": round(toasted["toasts_received"] / seconds, 1),  # events/s delivered
        **{name: toasted[name] for name in ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms")},
        "http": http,
        "errors": never + http["errors"] + strays,
        "generator_cpu_seconds": http["generator_cpu_seconds"],
        "next": base + len(wanted),
    }


def wanted_pairs(pairs: dataset.Pairs, base: int, count: int) -> list[tuple[str, str]]:
    """(player id, api_name) of the fresh pairs base .. base + count - 1."""
    wanted = []
    for i in range(count):
        n, achievement = pairs.pair(base + i)
        wanted.append((dataset.player_id(n), dataset.api_name(achievement)))
    return wanted
