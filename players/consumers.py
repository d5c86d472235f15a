"""WebSocket consumers: they authenticate, join groups and forward; nothing else.

- ``/ws/me/`` — the logged-in player's own stream (session cookie or ``?token=``):
  achievement.unlocked, leaderboard.updated, rival.passed.
- ``/ws/leaderboards/<game_id>/[?region=]`` and ``/ws/leaderboards/global/[?region=]`` —
  leaderboard.updated for anyone on that board; anonymous watchers welcome.
- ``/ws/seasons/<season_id>/`` — leaderboard.updated on the season board, season.closed.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from leaderboards.models import Season
from tracker import realtime
from tracker.models import Game
from tracker.regions import Region

UNAUTHORISED = 4401
NOT_FOUND = 4404


class StreamConsumer(AsyncJsonWebsocketConsumer):
    groups_joined: list[str]

    async def join(self, groups: list[str]) -> None:
        self.groups_joined = groups
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "subscribed", "data": {"groups": len(groups)}})

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def event_forward(self, message: dict[str, Any]) -> None:
        await self.send_json({"type": message["event"], "data": message["data"]})

    def query(self, name: str) -> str:
        return parse_qs(self.scope.get("query_string", b"").decode()).get(name, [""])[0]


class PlayerStreamConsumer(StreamConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHORISED)
            return
        asked = self.scope["url_route"]["kwargs"].get("player_id")
        if asked is not None and str(asked) != str(user.pk):
            # Another player's stream is never open, whatever their privacy.
            await self.close(code=UNAUTHORISED)
            return
        await self.join([realtime.player_group(user.pk)])


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
            await self.close(code=NOT_FOUND)
            return
        if game_id is None:
            await self.join([realtime.board_group("global", "", region)])
            return
        if not await _exists(Game, game_id):
            await self.close(code=NOT_FOUND)
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
            await self.close(code=NOT_FOUND)
            return
        # A regional season has one board, its region's: that is its all-regions board.
        board_region = "" if region == season_region else region
        await self.join([realtime.season_group(season_id), realtime.board_group("season", season_id, board_region)])
