"""Live events across processes, as production serves them (docs/live.md, "Serving"):
WebSockets held by a Daphne process (A), the unlock served by a gunicorn WSGI process (B).
The event must travel through the shared Redis channel layer to reach A's sockets.

Needs PostgreSQL and Redis: the two servers are real subprocesses reading the test
database that pytest-django created (so the test is transactional: they only see what
committed) and sharing the test run's Redis.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rest_framework_simplejwt.tokens import RefreshToken
from websockets.asyncio import client as websockets_client

from tests.conftest import achievement
from tests.helpers import UNLOCK_URL, give
from tests.servers import Server, daphne, gunicorn, post_json, running
from tracker.models import Game, Player

DELIVERY_SECONDS = 1.0

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def servers(rank_index: Any, tmp_path: Path) -> Iterator[list[Server]]:
    """A: Daphne (ASGI, holds the sockets). B: gunicorn (WSGI, serves the API). The Redis
    rank index is built and kept true, as the servers read ranks from it."""
    with running({"daphne": daphne, "gunicorn": gunicorn}, tmp_path) as started:
        yield started


async def next_event(connection: Any, event: str, deadline: float) -> dict[str, Any]:
    """The next frame of type `event` before `deadline` (loop time); other frames are skipped."""
    loop = asyncio.get_running_loop()
    while True:
        frame = json.loads(await asyncio.wait_for(connection.recv(), timeout=max(0.0, deadline - loop.time())))
        if frame["type"] == event:
            return frame["data"]


def test_an_unlock_served_by_one_process_reaches_sockets_held_by_another(
    servers: list[Server], alice: Player, bob: Player, game: Game, game_key: str
) -> None:
    sockets, api = servers
    give(bob, achievement(game, "SECRET_ENDING"))  # bob 50
    give(alice, achievement(game, "FIRST_FLIGHT"))  # alice 10
    token = str(RefreshToken.for_user(alice).access_token)
    unlock_body = {"player_id": str(alice.pk), "achievement": "SECRET_ENDING"}
    key_header = {"Authorization": f"Api-Key {game_key}"}
    origin = sockets.http

    async def scenario() -> None:
        async with (
            websockets_client.connect(f"{sockets.ws}/ws/leaderboards/{game.pk}/", origin=origin) as board,
            websockets_client.connect(f"{sockets.ws}/ws/me/?token={token}", origin=origin) as me,
        ):
            for connection in (board, me):
                assert json.loads(await asyncio.wait_for(connection.recv(), 5))["type"] == "subscribed"

            loop = asyncio.get_running_loop()
            sent = loop.time()
            status, body = await asyncio.to_thread(post_json, f"{api.http}{UNLOCK_URL}", unlock_body, key_header)
            assert status == 201, body
            assert body["new_rank"] == 1
            deadline = sent + DELIVERY_SECONDS

            moved = await next_event(board, "leaderboard.updated", deadline)
            assert (moved["player_id"], moved["points"], moved["new_rank"], moved["rank_change"]) == (
                str(alice.pk),
                60,
                1,
                -1,
            )
            unlocked = await next_event(me, "achievement.unlocked", deadline)
            assert unlocked["player_id"] == str(alice.pk)
            assert unlocked["achievement"]["name"] == "The Truth"
            mine = await next_event(me, "leaderboard.updated", deadline)
            assert (mine["board"], mine["new_rank"], mine["rank_change"]) == ("game", 1, -1)

    try:
        asyncio.run(scenario())
    except TimeoutError:
        pytest.fail(
            f"an event did not reach Daphne's socket within {DELIVERY_SECONDS} s of the unlock.\n"
            f"daphne:\n{sockets.output()}\ngunicorn:\n{api.output()}"
        )
