"""Compare the two Redis channel layers for what Questboard does with them: one event to a
player's group (latency) and one event to a board watched by many sockets (fan-out).

    python bench/channel_layers.py [--redis redis://127.0.0.1:6379/13] [--watchers 1000]

Receivers and the sender share one process and event loop, as in one Daphne worker; the
numbers compare the layers, they are not a model of a whole deployment.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer


async def one_to_one(layer: Any, rounds: int) -> list[float]:
    channel = await layer.new_channel()
    await layer.group_add("player.bench", channel)
    latencies = []
    for _ in range(rounds):
        started = time.perf_counter()
        await layer.group_send("player.bench", {"type": "event.forward", "t": started})
        await layer.receive(channel)
        latencies.append((time.perf_counter() - started) * 1000)
    await layer.group_discard("player.bench", channel)
    return latencies


async def fan_out(layer: Any, watchers: int, rounds: int) -> list[float]:
    channels = [await layer.new_channel() for _ in range(watchers)]
    for channel in channels:
        await layer.group_add("board.bench", channel)
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        await layer.group_send("board.bench", {"type": "event.forward"})
        await asyncio.gather(*(layer.receive(channel) for channel in channels))
        timings.append((time.perf_counter() - started) * 1000)
    for channel in channels:
        await layer.group_discard("board.bench", channel)
    return timings


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered):7.2f} ms   p99 {p99:7.2f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    for name, factory in (
        ("RedisChannelLayer", RedisChannelLayer),
        ("RedisPubSubChannelLayer", RedisPubSubChannelLayer),
    ):
        layer = factory(hosts=[args.redis])
        single = await one_to_one(layer, args.rounds)
        fanned = await fan_out(layer, args.watchers, max(args.rounds // 10, 10))
        print(f"{name:24s} one player event: {summary(single)}")
        print(f"{name:24s} board event to {args.watchers} watchers: {summary(fanned)}")
        if hasattr(layer, "flush"):
            await layer.flush()


if __name__ == "__main__":
    asyncio.run(main())
