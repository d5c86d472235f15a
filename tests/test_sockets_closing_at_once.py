"""Many sockets closing at once against a real Daphne: each consumer's channel is released
without an error in Daphne's log, and none of them stays subscribed in Redis.

The benchmark's 10,000 idle sockets closing together made Daphne log thousands of
"Unexpected exception while cleaning-up channel" tracebacks: every closing consumer left
its channel's UNSUBSCRIBE to channels_redis, one command per channel behind one lock, and
Daphne cancels an application still running `application_close_timeout` seconds after its
client left, mid-cleanup, leaving the channel subscribed. Here Daphne is given a 1 s
timeout, so 1,000 sockets close at the pace 10,000 do against the default 10 s (2,000
against 1 s asked twice that pace, and failed on a slower day of this machine).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.conf import settings
from websockets.asyncio.client import ClientConnection, connect

from tests.servers import VENV_BIN, running

SOCKETS = 1000
CLOSE_TIMEOUT_SECONDS = "1"

pytestmark = pytest.mark.django_db(transaction=True)


def daphne_with_short_close_timeout(port: int) -> list[str]:
    return [
        *(str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port)),
        *("--application-close-timeout", CLOSE_TIMEOUT_SECONDS),
        "config.asgi:application",
    ]


async def open_and_close_together(port: int, count: int) -> int:
    """Open `count` board sockets (each greeted), then close them all at once; returns
    how many opened."""
    origin = f"http://127.0.0.1:{port}"
    gate = asyncio.Semaphore(100)

    async def one() -> ClientConnection:
        async with gate:
            socket = await connect(
                f"ws://127.0.0.1:{port}/ws/leaderboards/global/", origin=origin, ping_interval=None, open_timeout=30
            )
            greeting = json.loads(await asyncio.wait_for(socket.recv(), 30))
            assert greeting["type"] == "subscribed", greeting
            return socket

    sockets = await asyncio.gather(*(one() for _ in range(count)))
    await asyncio.gather(*(socket.close() for socket in sockets), return_exceptions=True)
    return len(sockets)


def subscribed(prefix: str) -> int:
    return len(redis.Redis.from_url(settings.REDIS_URL).pubsub_channels(f"{prefix}*"))


def test_sockets_closing_together_release_their_channels_without_an_error(tmp_path: Path) -> None:
    prefix = f"test-closing-{uuid.uuid4().hex[:8]}."
    with running(
        {"daphne": daphne_with_short_close_timeout}, tmp_path, {"CHANNEL_PREFIX": prefix, "DB_POOL_MAX_SIZE": "4"}
    ) as (server,):
        assert asyncio.run(open_and_close_together(server.port, SOCKETS)) == SOCKETS
        # Every channel unsubscribed, or Daphne's close timeout long past: either way the
        # log now holds whatever the closing left there.
        deadline = time.monotonic() + 20
        while subscribed(prefix) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)
        leftover = subscribed(prefix)
        log = server.log.read_text(errors="replace")
    assert "Traceback" not in log and " ERROR " not in log, log[-3000:]
    assert "took too long to shut down" not in log, log[-3000:]
    assert leftover == 0, f"{leftover} channels still subscribed after their sockets closed"
