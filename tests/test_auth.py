"""tracker/auth.py: a game's API key acts only on its own game, refused alike everywhere."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIClient

from tests.conftest import Api, achievement
from tests.helpers import assert_error, post, progress, unlock
from tracker.models import Game, Player

ANOTHER_GAMES_KEY = "This API key belongs to another game."


def session(client: APIClient, player: Player, game: Game) -> Response:
    start = (timezone.now() - timedelta(hours=3)).replace(microsecond=0)
    Game.objects.filter(pk=game.pk).update(created=start - timedelta(days=1))  # no session predates its game
    body = {
        "player_id": str(player.pk),
        "game_id": str(game.pk),
        "session_id": "s-1",
        "started_at": start.isoformat(),
        "ended_at": (start + timedelta(hours=1)).isoformat(),
    }
    return post(client, "/api/v1/sessions", body)


def analytics(client: APIClient, player: Player, game: Game) -> Response:
    return client.get(f"/api/v1/games/{game.pk}/analytics")


CALLS: dict[str, Callable[[APIClient, Player, Game], Response]] = {
    "an unlock": lambda client, player, game: unlock(client, player, achievement(game, "FIRST_FLIGHT")),
    "progress": lambda client, player, game: progress(client, player, achievement(game, "KILL_100"), 1),
    "a play session": session,
    "its analytics": analytics,
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_a_game_key_is_refused_on_another_games_data_with_one_message(
    call: Callable[[APIClient, Player, Game], Response],
    api: Api,
    game: Game,
    game_key: str,
    other_game_key: str,
    alice: Player,
) -> None:
    error = assert_error(call(api.as_key(other_game_key), alice, game), 403, "forbidden")
    assert error["message"] == ANOTHER_GAMES_KEY

    own = call(api.as_key(game_key), alice, game)
    assert own.status_code in (200, 201), own.content


def test_only_its_own_key_sees_a_hidden_achievement(
    api: Api, game: Game, game_key: str, other_game_key: str, alice: Player
) -> None:
    def names(client: APIClient) -> set[Any]:
        response = client.get(f"/api/v1/games/{game.pk}/achievements")
        assert response.status_code == 200, response.content
        return {a["name"] for a in response.json()["achievements"]}

    assert "The Truth" in names(api.as_key(game_key))
    assert "The Truth" not in names(api.as_key(other_game_key))
