"""Driving the app's WebSockets in-process (channels' WebsocketCommunicator), for the live
tests: the headers a browser sends, and running an async scenario from a sync test."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from config.asgi import application

ORIGIN = b"http://testserver"
WAIT = 5.0  # seconds an expected frame may take (Redis pub/sub is a network hop)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    """Run an async scenario from a sync test, in one event loop."""
    async_to_sync(scenario)()


def socket(path: str, *, cookie: str | None = None, origin: bytes | None = ORIGIN) -> WebsocketCommunicator:
    headers = [(b"host", b"testserver")]
    if origin is not None:
        headers.append((b"origin", origin))
    if cookie:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


async def refusal(path: str, *, cookie: str | None = None, origin: bytes | None = ORIGIN) -> int:
    """Connect, expect a refusal, return its close code.

    A refusal accepts the handshake and closes at once with its code, before any frame: a
    handshake refused outright (an HTTP 403) reaches a browser as a bare 1006 it would
    retry forever."""
    communicator = socket(path, cookie=cookie, origin=origin)
    accepted, code = await communicator.connect(timeout=WAIT)
    assert accepted, f"{path}: the handshake itself was refused (HTTP 403, close code {code})"
    closed = await communicator.receive_output(timeout=WAIT)
    assert closed["type"] == "websocket.close", f"{path} was not refused: {closed}"
    await communicator.disconnect(code=closed["code"], timeout=WAIT)
    return closed["code"]
