"""WebSocket consumers: they authenticate, join groups and forward; nothing else.

- ``/ws/me/`` — the logged-in player's own stream (session cookie or ``?token=``):
  achievement.unlocked, leaderboard.updated, rival.passed.
- ``/ws/leaderboards/<game_id>/[?region=]`` and ``/ws/leaderboards/global/[?region=]`` —
  leaderboard.updated for anyone on that board; anonymous watchers welcome.
- ``/ws/seasons/<season_id>/`` — leaderboard.updated on the season board, season.closed.

Refusals accept the handshake and then close with a code (infra.realtime): the client
learns why, and does not retry what cannot succeed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
import weakref
from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels_redis.pubsub import RedisPubSubChannelLayer

from infra import ratelimits, realtime
from leaderboards.models import Season, season_board_region
from tracker.models import Game
from tracker.regions import Region

log = logging.getLogger("questboard.realtime")

UNAUTHENTICATED = realtime.UNAUTHENTICATED
FORBIDDEN = realtime.FORBIDDEN
NOT_FOUND = realtime.NOT_FOUND
TOO_MANY = realtime.TOO_MANY


class StreamConsumer(AsyncJsonWebsocketConsumer):
    groups_joined: list[str]

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        """Each handshake is charged to its player's (or address's) rate limit, the same
        budget as their requests: past it, the socket is refused with 4429."""
        charge = sync_to_async(ratelimits.limiter().charge, thread_sensitive=False)
        if not (await charge([ratelimits.socket_bucket(self.scope)])).allowed:
            await self.refuse(TOO_MANY)
            return
        await super().websocket_connect(message)

    async def refuse(self, code: int) -> None:
        await self.accept()
        await self.close(code=code)

    async def join(self, groups: list[str]) -> None:
        self.groups_joined = groups
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "subscribed", "data": {"groups": len(groups)}})

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)
        release_channel(self.channel_layer, self.channel_name)

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        """Every frame a client sends counts against its socket's message limit: past it,
        the socket closes with 4429. A frame that is not JSON is ignored."""
        if not ratelimits.socket_message_allowed(self.channel_name):
            await self.close(code=TOO_MANY)
            return
        try:
            await super().websocket_receive(message)
        except json.JSONDecodeError:
            return

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Forwarded events go straight to the socket. Channels closes stale database
        connections before every message it dispatches, a hop to a worker thread each time:
        a third of Daphne's CPU per toast. A forward touches no database, and every
        handler that does goes through `database_sync_to_async`, which closes them itself."""
        if message["type"] == "event.forward":
            await self.event_forward(message)
        else:
            await super().dispatch(message)

    async def event_forward(self, message: dict[str, Any]) -> None:
        await self.send_json({"type": message["event"], "data": message["data"]})

    def query(self, name: str) -> str:
        return parse_qs(self.scope.get("query_string", b"").decode()).get(name, [""])[0]


class PlayerStreamConsumer(StreamConsumer):
    """A player's own stream. It lasts as long as the access that opened it: a token's
    stream closes with 4401 when the token expires, and every stream of the player is told
    to check its credentials again when their access is revoked (`session_check`)."""

    player_id: Any = None
    expiry: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(UNAUTHENTICATED)
            return
        asked = self.scope["url_route"]["kwargs"].get("player_id")
        if asked is not None and str(asked) != str(user.pk):
            # Another player's stream is never open, whatever their privacy.
            await self.refuse(FORBIDDEN)
            return
        self.player_id = user.pk
        await self.join([realtime.player_group(user.pk)])
        token = self.scope.get("token")
        if token is not None:
            self.expiry = asyncio.create_task(self.close_at(token["exp"]))

    async def close_at(self, exp: float) -> None:
        await asyncio.sleep(max(0.0, exp - time.time()))
        await self.close(code=UNAUTHENTICATED)

    async def session_check(self, message: dict[str, Any]) -> None:
        """The player's password was set, they were deactivated or they ended every
        session: keep this stream only if what opened it still lets them in."""
        if not await realtime.still_signed_in(self.scope, self.player_id):
            await self.close(code=UNAUTHENTICATED)

    async def disconnect(self, code: int) -> None:
        if self.expiry is not None:
            self.expiry.cancel()
        await super().disconnect(code)


# Releasing a closed socket's own channel. Left to channels_redis, each consumer's channel is
# unsubscribed when Channels cancels its receive: one UNSUBSCRIBE per channel, each waiting
# its turn for the connection's lock. When thousands of sockets close at once that queue
# outlasts Daphne's application_close_timeout (10 s), Daphne cancels the consumers still in
# it, and channels_redis logs each cancelled clean-up as an error and leaves the channel
# subscribed. Here the consumer takes its channel out of the layer itself as it disconnects
# (so the cancelled receive has nothing left to do), and one task per layer unsubscribes the
# released channels in batches: one command for up to UNSUBSCRIBE_BATCH channels.
UNSUBSCRIBE_BATCH = 500
_releasers: weakref.WeakKeyDictionary[Any, _ChannelReleaser] = weakref.WeakKeyDictionary()


def release_channel(layer: Any, channel: str) -> None:
    """Take a disconnecting consumer's channel out of the Redis pub/sub layer of this event
    loop and queue its UNSUBSCRIBE; nothing for any other layer (it cleans up as it will)."""
    if not isinstance(layer, RedisPubSubChannelLayer):
        return
    loop_layer = layer._get_layer()
    releaser = _releasers.get(loop_layer)
    if releaser is None:
        releaser = _releasers[loop_layer] = _ChannelReleaser(loop_layer)
    releaser.release(channel)


class _ChannelReleaser:
    """The batched UNSUBSCRIBEs of one event loop's pub/sub layer. It uses the layer's
    shard connections as channels_redis 4.3 does in `RedisSingleShardConnection.unsubscribe`
    (same lock, same bookkeeping), only with many channels per command."""

    def __init__(self, loop_layer: Any) -> None:
        self.layer = loop_layer
        self.pending: dict[Any, list[str]] = {}  # shard -> channels to unsubscribe
        self.task: asyncio.Task[None] | None = None

    def release(self, channel: str) -> None:
        if self.layer.channels.pop(channel, None) is None:
            return
        self.pending.setdefault(self.layer._get_shard(channel), []).append(channel)
        if self.task is None or self.task.done():
            # Not the consumer's task: Daphne may cancel that one, this must finish.
            self.task = asyncio.get_running_loop().create_task(self.drain())

    async def drain(self) -> None:
        await asyncio.sleep(0)  # the rest of a burst of closes joins the first batch
        while self.pending:
            shard, channels = self.pending.popitem()
            for start in range(0, len(channels), UNSUBSCRIBE_BATCH):
                batch = channels[start : start + UNSUBSCRIBE_BATCH]
                try:
                    async with shard._lock:
                        batch = [channel for channel in batch if channel in shard._subscribed_to]
                        if batch:
                            shard._ensure_redis()
                            shard._ensure_receiver()
                            await shard._pubsub.unsubscribe(*batch)
                            shard._subscribed_to.difference_update(batch)
                except Exception as error:
                    # Redis away: the channels stay subscribed on a connection that is
                    # reopened (and so emptied) when Redis is back; nothing reads them.
                    log.warning("could not unsubscribe %d closed sockets' channels: %r", len(batch), error)


@database_sync_to_async
def _exists(model: type, pk: Any) -> bool:
    try:
        return model.objects.filter(pk=uuid.UUID(str(pk))).exists()
    except ValueError:
        return False


class BoardStreamConsumer(StreamConsumer):
    async def connect(self) -> None:
        game_id = self.scope["url_route"]["kwargs"].get("game_id")
        region = self.query("region")
        if region and region not in Region.values:
            await self.refuse(NOT_FOUND)
            return
        if game_id is None:
            await self.join([realtime.board_group("global", "", region)])
            return
        if not await _exists(Game, game_id):
            await self.refuse(NOT_FOUND)
            return
        await self.join([realtime.board_group("game", game_id, region)])


@database_sync_to_async
def _season_region(season_id: Any) -> str | None:
    """The season's region ("" for all regions), or None if there is no such season."""
    try:
        return Season.objects.filter(pk=uuid.UUID(str(season_id))).values_list("region", flat=True).first()
    except ValueError:
        return None


class SeasonStreamConsumer(StreamConsumer):
    async def connect(self) -> None:
        season_id = self.scope["url_route"]["kwargs"]["season_id"]
        season_region = await _season_region(season_id)
        region = self.query("region")
        if season_region is None or (region and region not in Region.values):
            await self.refuse(NOT_FOUND)
            return
        board_region = season_board_region(season_region, region)
        await self.join([realtime.season_group(season_id), realtime.board_group("season", season_id, board_region)])
