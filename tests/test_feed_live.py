"""The friends' feed, live (docs/live.md, `feed.updated`): when a friend's unlock is relayed,
or a season closes with a friend in its top ten, each player who sees that friend's
activity gets `feed.updated` on `/ws/me/`, and their dashboard reads its feed again. The
event says nothing of what or whose; who gets it follows the feed's privacy rule.

Transactional, like every live test: events leave after commit (tests/test_live_consumers.py).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from achievements.services import save_season
from leaderboards.services import close_season, hide_player
from tests.conftest import make_player
from tests.test_friends import befriend
from tests.test_live_consumers import QUIET, access, frames, only, run, server_unlocks, silence, stream
from tracker.models import Game, Player, Privacy

pytestmark = pytest.mark.django_db(transaction=True)

FEED_UPDATED = {"type": "feed.updated", "data": {}}


async def drained(communicator: WebsocketCommunicator) -> list[dict[str, Any]]:
    """Every frame until QUIET seconds pass without one."""
    received = []
    while not await communicator.receive_nothing(timeout=QUIET):
        received.append(await communicator.receive_json_from())
    return received


def test_a_friends_unlock_tells_each_friend_their_feed_changed(
    alice: Player, bob: Player, game: Game, game_key: str
) -> None:
    eve = make_player("eve")
    befriend(alice, bob)
    tokens = {player.username: access(player) for player in (alice, bob, eve)}

    async def scenario() -> None:
        async with (
            stream(f"/ws/me/?token={tokens['alice']}") as alices,
            stream(f"/ws/me/?token={tokens['bob']}") as bobs,
            stream(f"/ws/me/?token={tokens['eve']}") as eves,
        ):
            await server_unlocks(game_key, bob, game, "FIRST_FLIGHT")

            assert await frames(alices, 1) == [FEED_UPDATED]
            # His own toast and rank moves; his own feed has not changed.
            assert "feed.updated" not in {frame["type"] for frame in await drained(bobs)}
            await silence(eves)  # no friend of bob's

            await server_unlocks(game_key, eve, game, "FIRST_FLIGHT")  # eve has no friends
            await silence(alices)

    run(scenario)


@pytest.mark.parametrize(
    ("state", "told"), [("public", True), ("friends", True), ("private", False), ("blocked", False)]
)
def test_only_friends_who_see_the_players_activity_are_told(
    alice: Player, game: Game, game_key: str, state: str, told: bool
) -> None:
    dana = make_player("dana", privacy=Privacy.PUBLIC if state == "blocked" else state)
    befriend(dana, alice)
    if state == "blocked":
        hide_player(player=dana, actor=None, reason="Cheating.")
    token = access(alice)

    async def scenario() -> None:
        async with stream(f"/ws/me/?token={token}") as alices:
            await server_unlocks(game_key, dana, game, "ACE_PILOT")
            if told:
                assert await frames(alices, 1) == [FEED_UPDATED]
            else:
                await silence(alices)

    run(scenario)


def test_a_season_closing_with_a_friend_in_its_top_ten_tells_their_friends(
    alice: Player, bob: Player, game: Game, game_key: str
) -> None:
    befriend(alice, bob)
    now = timezone.now()
    season = save_season(game=game, name="Cup", starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1))
    token = access(alice)

    async def scenario() -> None:
        await server_unlocks(game_key, bob, game, "ACE_PILOT")  # before alice listens
        async with stream(f"/ws/me/?token={token}") as alices:
            await database_sync_to_async(close_season)(season=season)

            received = await frames(alices, 1)
            assert only(received, "feed.updated") == {}

    run(scenario)
