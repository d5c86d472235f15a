"""What an unlock costs at the API: its round trips, pinned, since the unlock is the hot
path every game server calls.

With the catalogue warm, a game server's unlock is one SQL statement (the unlock, the
counters, season points and the outbox row together) and one Redis call (the index update
and the new rank); a batch of 100 is the same. Relaying happens elsewhere (the relay
process), so none of it is in the request. The rate limit adds no round trip while the
process holds a lease on the key's budget (infra/ratelimits.py: one EVALSHA on the
limiter's own client takes up to 100 requests' worth), pinned as `cost.limiter`.
"""

from __future__ import annotations

from typing import Any

import pytest

from achievements.models import Unlock
from leaderboards import index
from leaderboards.boards import Board
from tests.conftest import Api, achievement, make_player
from tests.costs import Meter
from tests.helpers import BATCH_URL, post, unlock
from tracker.models import Game, OutboxEvent, Player

pytestmark = pytest.mark.usefixtures("relayed_elsewhere")


@pytest.fixture
def relayed_elsewhere(settings: Any) -> None:
    settings.OUTBOX_RELAY = "process"


def test_a_single_unlock_is_one_statement_and_one_redis_call_with_the_rate_limit_leased(
    api: Api, meter: Meter, alice: Player, bob: Player, game: Game, game_key: str
) -> None:
    client = api.as_key(game_key)
    with meter.measure() as first:  # warms the catalogue and takes the key's lease
        assert unlock(client, bob, achievement(game, "ACE_PILOT")).status_code == 201
    first_flight = achievement(game, "FIRST_FLIGHT")
    with meter.measure() as cost:
        response = unlock(client, alice, first_flight)
    assert response.status_code == 201
    assert first.limiter == 1
    assert (cost.sql, cost.redis, cost.limiter) == (1, 1, 0)
    # ...and that one statement did all of it: the row, the counters, the outbox, the rank.
    assert Unlock.objects.filter(player=alice).count() == 1
    assert OutboxEvent.objects.filter(kind="unlocks").count() == 2
    assert response.json()["new_rank"] == 2
    assert index.redis_store().standing(Board.game(game.pk), str(alice.pk)).points == 10


def test_unlocking_again_is_one_statement_and_one_redis_call(
    api: Api, meter: Meter, alice: Player, game: Game, game_key: str
) -> None:
    client, first_flight = api.as_key(game_key), achievement(game, "FIRST_FLIGHT")
    assert unlock(client, alice, first_flight).status_code == 201
    with meter.measure() as cost:
        response = unlock(client, alice, first_flight)
    assert (response.status_code, response.json()["new_rank"]) == (200, 1)
    assert (cost.sql, cost.redis, cost.limiter) == (1, 1, 0)


def test_a_batch_of_100_is_one_statement_and_one_redis_call(api: Api, meter: Meter, game: Game, game_key: str) -> None:
    players = [make_player(f"batch{i:03d}") for i in range(25)]
    names = ["FIRST_FLIGHT", "ACE_PILOT", "SECRET_ENDING", "KILL_100"]
    items = [{"player_id": str(p.pk), "achievement": name} for p in players for name in names]
    client = api.as_key(game_key)
    assert post(client, BATCH_URL, {"unlocks": items[:1]}).status_code == 200  # warms the catalogue
    with meter.measure() as cost:
        response = post(client, BATCH_URL, {"unlocks": items[1:] + items[:1]})
    assert response.status_code == 200
    assert (response.json()["created"], response.json()["already_unlocked"]) == (99, 1)
    assert (cost.sql, cost.redis, cost.limiter) == (1, 1, 0)
