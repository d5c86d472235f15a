"""Live events: group names, the one broadcast helper, and WebSocket authentication.

Every event leaves through `broadcast`, after the transaction that caused it committed
(`broadcast_on_commit`), as ``{"type": <event>, "data": {...}}`` on the socket. Group names
come only from the functions here.

Sockets are refused, and closed, with the close codes below, always after the handshake
was accepted: a refused handshake reaches a browser as a bare 1006 it cannot tell from a
network drop, so it would retry forever (docs/live.md, "Close codes").
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Iterable
from importlib import import_module
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse

from asgiref.sync import async_to_sync
from channels.auth import AuthMiddlewareStack, get_user
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.middleware import BaseMiddleware
from channels.security.websocket import AllowedHostsOriginValidator
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.exceptions import TokenError

from infra import tokens

if TYPE_CHECKING:
    from infra.outbox import SessionsPayload

log = logging.getLogger("questboard.realtime")

Message = tuple[str, str, dict[str, Any]]  # (group, event type, data)

# Close codes (docs/live.md): 4xxx mirrors the HTTP status of the same refusal. A client
# must not retry these with the same credentials; anything else (1006 a dropped
# connection, 1011 a server error, 1012 a restart) is worth a reconnect with backoff.
UNAUTHENTICATED = 4401  # no session, a bad, expired or revoked token, a session that ended
FORBIDDEN = 4403  # another player's stream; a cookie socket from a foreign page
NOT_FOUND = 4404  # no such game, season or region
TOO_MANY = 4429  # too many handshakes or messages (rate limits): reconnect with backoff


def player_group(player_id: Any) -> str:
    return f"player.{player_id}"


def board_group(kind: str, scope: Any = "", region: str = "") -> str:
    """Watchers of one board: kind "game" (scope = game id), "global", or "season"."""
    return ".".join(part for part in ("board", kind, str(scope or ""), region) if part)


def season_group(season_id: Any) -> str:
    return f"season.{season_id}"


def feed_updated(player_ids: Iterable[Any]) -> list[Message]:
    """`feed.updated` to each of these players: something new is in their friends' feed.
    It says nothing of what or whose (the page reads the feed again, under its privacy
    rules), so a player whose friend turned private meanwhile learns nothing from it. The
    audience is the caller's to decide (`tracker.auth.activity_audience`)."""
    return [(player_group(player_id), "feed.updated", {}) for player_id in sorted(player_ids, key=str)]


def broadcast(messages: Iterable[Message], *, strict: bool = False) -> None:
    """Send events to groups now, in one trip into the event loop.

    By default it never raises: the event is a courtesy and the data behind it is
    committed. `strict` (the outbox relay) raises the first failure instead, so the
    events stay pending and are sent again when the channel layer is back.
    """
    _send(
        [(group, {"type": "event.forward", "event": event, "data": data}) for group, event, data in messages],
        strict=strict,
    )


def _send(messages: list[tuple[str, dict[str, Any]]], *, strict: bool) -> None:
    """group_send each (group, channel layer message), all at once, in one trip into the
    event loop: one send waits on Redis while the next is written, so a batch costs about
    one round trip instead of one per message."""
    layer = get_channel_layer()
    if layer is None or not messages:
        return

    async def send_all() -> None:
        if isinstance(layer, RedisPubSubChannelLayer):
            try:
                await _publish_all(layer, messages)
            except Exception:
                if strict:
                    raise
                log.warning("could not send %d live events", len(messages), exc_info=True)
            return
        outcomes = await asyncio.gather(
            *(layer.group_send(group, message) for group, message in messages), return_exceptions=True
        )
        for (group, message), outcome in zip(messages, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if strict:
                    raise outcome
                log.warning("could not send %s to %s", message.get("event", message["type"]), group, exc_info=outcome)

    try:
        loop = _loop_of_this_process()
        if loop is not None:
            asyncio.run_coroutine_threadsafe(send_all(), loop).result(timeout=SEND_TIMEOUT)
        else:
            async_to_sync(send_all)()
    except Exception:
        if strict:
            raise
        log.warning("could not send %d live events", len(messages), exc_info=True)


async def _publish_all(layer: RedisPubSubChannelLayer, messages: list[tuple[str, dict[str, Any]]]) -> None:
    """What `group_send` of each message does — PUBLISH its serialised form on the group's
    channel of its shard — in one pipeline per shard: the layer publishes one message per
    round trip under a lock, so concurrent group_sends would wait on each other. Same
    channel names, same bytes, same order per group; delivery stays at-most-once."""
    inner = layer._get_layer()
    by_shard: dict[Any, list[tuple[str, bytes]]] = {}
    for group, message in messages:
        channel = inner._get_group_channel_name(group)
        by_shard.setdefault(inner._get_shard(channel), []).append((channel, layer.serialize(message)))
    for shard, items in by_shard.items():
        async with shard._lock:
            shard._ensure_redis()
            pipe = shard._redis.pipeline(transaction=False)
            for channel, payload in items:
                pipe.publish(channel, payload)
            await pipe.execute()


# A process that broadcasts all the time (the outbox relay, a Celery worker) keeps one event
# loop for it in a thread of its own: async_to_sync would start a new loop per call, and the
# Redis channel layer a new connection with each loop. The loop belongs to the process that
# started it: a child forked after it (Celery's prefork pool) has no such thread and starts
# its own.
_own_loop: asyncio.AbstractEventLoop | None = None
_own_pid: int | None = None
SEND_TIMEOUT = 30.0


def use_own_loop() -> None:
    global _own_loop, _own_pid
    if _own_loop is None or _own_pid != os.getpid():
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, name="broadcast", daemon=True).start()
        _own_loop, _own_pid = loop, os.getpid()


def _loop_of_this_process() -> asyncio.AbstractEventLoop | None:
    return _own_loop if _own_pid == os.getpid() else None


def broadcast_on_commit(messages: list[Message]) -> None:
    if messages:
        transaction.on_commit(lambda: broadcast(messages), robust=True)


def relay_session_checks(events: list[SessionsPayload]) -> None:
    """Outbox handler of "sessions" (recorded by tracker.services whenever a player's access
    is revoked: password set, deactivated, every session ended). Tells every socket of each
    player to check its credentials again; those that no longer hold close with 4401.
    Raises when the channel layer is away, so the check stays pending: sockets must not
    outlive the access that opened them. A repeat is harmless: a check changes nothing."""
    players = sorted({event["player"] for event in events})
    _send([(player_group(player), {"type": "session.check"}) for player in players], strict=True)


# --- Authentication of sockets ------------------------------------------------------------


def _token_of(scope: dict[str, Any]) -> str:
    return parse_qs(scope.get("query_string", b"").decode()).get("token", [""])[0]


@database_sync_to_async
def _token_player(raw: str) -> tuple[Any, Any]:
    """(player, validated access token), or (AnonymousUser, None) when the token is bad,
    expired or no longer current (infra.tokens)."""
    try:
        return tokens.access_token_player(raw)
    except (AuthenticationFailed, TokenError):
        return AnonymousUser(), None


class JwtQueryAuthMiddleware(BaseMiddleware):
    """Game clients pass their access token as ``?token=<access>`` (a browser's WebSocket
    cannot set headers); browsers are already known by their session cookie. With a token
    the cookie is ignored: a bad token leaves the connection anonymous, so private streams
    refuse it. ``scope["token"]`` keeps the validated token (its expiry closes the socket)."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        raw = _token_of(scope)
        if raw:
            scope["user"], scope["token"] = await _token_player(raw)
        return await super().__call__(scope, receive, send)


def socket_auth(inner: Any) -> Any:
    return AuthMiddlewareStack(JwtQueryAuthMiddleware(inner))


async def still_signed_in(scope: dict[str, Any], player_id: Any) -> bool:
    """Whether the credentials a socket opened with still let `player_id` in, read afresh:
    its token (still current: infra.tokens) or its session (still in the session store,
    for an active player, under their present password)."""
    raw = _token_of(scope)
    if raw:
        user, _ = await _token_player(raw)
    else:
        session = scope.get("session")
        if session is None or not session.session_key:
            return False
        fresh = import_module(settings.SESSION_ENGINE).SessionStore(session.session_key)
        user = await get_user({"session": fresh})
    return bool(user.is_authenticated and str(user.pk) == str(player_id))


class ForeignOriginRefusal(AsyncWebsocketConsumer):
    """Accepts the handshake, then closes with 4403: the close code reaches the page, where
    a refused handshake (channels' own origin check) reaches it only as a bare 1006."""

    async def connect(self) -> None:
        await self.accept()
        await self.close(code=FORBIDDEN)


def _from_our_pages(validator: Any, scope: dict[str, Any]) -> bool:
    origin = next((value for name, value in scope.get("headers", []) if name == b"origin"), None)
    try:
        return bool(validator.valid_origin(urlparse(origin.decode("latin1")) if origin else None))
    except ValueError:  # a malformed Origin ("http://[", a port out of range) is no page of ours
        return False


class OriginCheckForCookies:
    """The origin check, for the sockets that need it. A browser attaches its session
    cookie to a socket any site opens, so a cookie-authenticated socket must come from one
    of our own pages (an ``Origin`` naming an ``ALLOWED_HOSTS`` host); any other is closed
    with 4403. A socket with ``?token=`` is authenticated by that token alone (the cookie is
    then ignored, see JwtQueryAuthMiddleware), which a foreign page does not have: game
    clients, which send no Origin header, connect that way."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        # channels' validator, for its matching rules only: it refuses the handshake itself.
        self.origins = AllowedHostsOriginValidator(inner)
        self.refuse = ForeignOriginRefusal.as_asgi()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if _token_of(scope) or _from_our_pages(self.origins, scope):
            return await self.inner(scope, receive, send)
        return await self.refuse(scope, receive, send)
