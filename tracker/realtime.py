"""Live events: group names, the one broadcast helper, and WebSocket authentication.

Every event leaves through `broadcast`, after the transaction that caused it committed
(`broadcast_on_commit`), as ``{"type": <event>, "data": {...}}`` on the socket. Group names
come only from the functions here.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import async_to_sync
from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.middleware import BaseMiddleware
from channels.security.websocket import AllowedHostsOriginValidator
from django.db import transaction
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

log = logging.getLogger("questboard.realtime")

Message = tuple[str, str, dict[str, Any]]  # (group, event type, data)


def player_group(player_id: Any) -> str:
    return f"player.{player_id}"


def board_group(kind: str, scope: Any = "", region: str = "") -> str:
    """Watchers of one board: kind "game" (scope = game id), "global", or "season"."""
    return ".".join(part for part in ("board", kind, str(scope or ""), region) if part)


def season_group(season_id: Any) -> str:
    return f"season.{season_id}"


def broadcast(messages: Iterable[Message], *, strict: bool = False) -> None:
    """Send events to groups now, in one trip into the event loop.

    By default it never raises: the event is a courtesy and the data behind it is
    committed. `strict` (the outbox relay) raises the first failure instead, so the
    events stay pending and are sent again when the channel layer is back.
    """
    layer = get_channel_layer()
    messages = list(messages)
    if layer is None or not messages:
        return

    async def send_all() -> None:
        for group, event, data in messages:
            try:
                await layer.group_send(group, {"type": "event.forward", "event": event, "data": data})
            except Exception:
                if strict:
                    raise
                log.warning("could not send %s to %s", event, group, exc_info=True)

    try:
        if _own_loop is not None:
            asyncio.run_coroutine_threadsafe(send_all(), _own_loop).result(timeout=SEND_TIMEOUT)
        else:
            async_to_sync(send_all)()
    except Exception:
        if strict:
            raise
        log.warning("could not send %d live events", len(messages), exc_info=True)


# A process that broadcasts all the time (the outbox relay) keeps one event loop for it in
# a thread of its own: async_to_sync would start a new loop per call, and the Redis
# channel layer a new connection with each loop.
_own_loop: asyncio.AbstractEventLoop | None = None
SEND_TIMEOUT = 30.0


def use_own_loop() -> None:
    global _own_loop
    if _own_loop is None:
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, name="broadcast", daemon=True).start()
        _own_loop = loop


def broadcast_on_commit(messages: list[Message]) -> None:
    if messages:
        transaction.on_commit(lambda: broadcast(messages), robust=True)


# --- Authentication of sockets ------------------------------------------------------------


@database_sync_to_async
def _user_from_token(raw: str) -> Any:
    auth = JWTAuthentication()
    return auth.get_user(auth.get_validated_token(raw))


def _token_of(scope: dict[str, Any]) -> str:
    return parse_qs(scope.get("query_string", b"").decode()).get("token", [""])[0]


class JwtQueryAuthMiddleware(BaseMiddleware):
    """Game clients pass their access token as ``?token=<access>`` (a browser's WebSocket
    cannot set headers); browsers are already known by their session cookie. With a token
    the cookie is ignored: a bad token leaves the connection anonymous, so private streams
    refuse it."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        token = _token_of(scope)
        if token:
            try:
                scope["user"] = await _user_from_token(token)
            except (InvalidToken, TokenError, Exception):
                from django.contrib.auth.models import AnonymousUser

                scope["user"] = AnonymousUser()
        return await super().__call__(scope, receive, send)


def socket_auth(inner: Any) -> Any:
    return AuthMiddlewareStack(JwtQueryAuthMiddleware(inner))


class OriginCheckForCookies:
    """The origin check, for the sockets that need it. A browser attaches its session
    cookie to a socket any site opens, so a cookie-authenticated socket must come from one
    of our own pages. A socket with ``?token=`` is authenticated by that token alone (the
    cookie is then ignored, see JwtQueryAuthMiddleware), which a foreign page does not
    have: game clients, which send no Origin header, connect that way."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.checked = AllowedHostsOriginValidator(inner)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        app = self.inner if _token_of(scope) else self.checked
        return await app(scope, receive, send)
