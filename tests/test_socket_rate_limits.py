"""WebSockets under the rate limits: a handshake costs its player (or its address) one request
of their budget, and a socket that sends too many frames is closed; both with 4429, which
the page's script retries later with backoff, unlike the final refusals."""

from __future__ import annotations

from typing import Any

import pytest

from infra import ratelimits
from tests.conftest import make_player
from tests.helpers import clear_of_a_minute_edge, logged_in
from tests.sockets import WAIT, refusal, run, socket
from tracker.models import Game

TOO_MANY = 4429

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_counters() -> Any:
    ratelimits.reset()
    clear_of_a_minute_edge()
    yield
    ratelimits.reset()


async def opened(path: str, *, cookie: str | None = None) -> bool:
    """Connect and read the first frame: True for the "subscribed" greeting."""
    communicator = socket(path, cookie=cookie)
    accepted, _ = await communicator.connect(timeout=WAIT)
    assert accepted
    first = await communicator.receive_output(timeout=WAIT)
    await communicator.disconnect()
    return first["type"] == "websocket.send"


def test_anonymous_handshakes_past_the_address_budget_are_refused_with_4429(settings: Any, game: Game) -> None:
    settings.RATE_LIMIT_ANONYMOUS = "3/minute"
    path = f"/ws/leaderboards/{game.pk}/"

    async def scenario() -> None:
        assert [await opened(path) for _ in range(3)] == [True, True, True]
        assert await refusal(path) == TOO_MANY

    run(scenario)


def test_a_players_handshakes_share_the_budget_of_their_requests(settings: Any) -> None:
    settings.RATE_LIMIT_PLAYER = "4/minute"
    alice = make_player("alice")
    client = logged_in(alice)
    cookie = client.cookies["sessionid"].value
    assert client.get("/").status_code == 200  # one request of the four
    assert client.get("/").status_code == 200  # two

    async def scenario() -> None:
        assert [await opened("/ws/me/", cookie=cookie) for _ in range(2)] == [True, True]
        assert await refusal("/ws/me/", cookie=cookie) == TOO_MANY

    run(scenario)
    assert client.get("/").status_code == 429


def test_a_socket_that_sends_too_many_frames_is_closed_with_4429(settings: Any, game: Game) -> None:
    settings.RATE_LIMIT_SOCKET_MESSAGES = "5/minute"

    async def scenario() -> None:
        communicator = socket(f"/ws/leaderboards/{game.pk}/")
        await communicator.connect(timeout=WAIT)
        assert (await communicator.receive_json_from(timeout=WAIT))["type"] == "subscribed"
        await communicator.send_to(text_data="not json")  # counts, and is ignored
        for _ in range(4):
            await communicator.send_json_to({"type": "ping"})
            assert await communicator.receive_json_from(timeout=WAIT) == {"type": "pong"}
        await communicator.send_json_to({"type": "ping"})
        closed = await communicator.receive_output(timeout=WAIT)
        assert closed == {"type": "websocket.close", "code": TOO_MANY}

    run(scenario)
