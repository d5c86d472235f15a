"""A game key asking about a player id learns nothing of a hidden player its game has never
recorded: every endpoint answers exactly what an unknown id gets (issue 19;
`stats.selectors.viewed_player`, docs/players.md "What a game key learns of a player")."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from achievements.services import save_season
from leaderboards.models import Season
from tests.conftest import Api, achievement, make_player
from tests.helpers import assert_error, give
from tracker.models import Game, Privacy

PROBES = [
    "/api/v1/players/{player}/achievements",
    "/api/v1/players/{player}/achievements?game={other}",
    "/api/v1/players/{player}/statistics",
    "/api/v1/players/{player}/statistics?game={other}",
    "/api/v1/players/{player}/dashboard",
    "/api/v1/players/{player}/history",
    "/api/v1/leaderboards/{game}/player/{player}",
    "/api/v1/leaderboards/{game}/around/{player}",
    "/api/v1/leaderboards/{other}/player/{player}",
    "/api/v1/leaderboards/global/player/{player}",
    "/api/v1/leaderboards/global/around/{player}",
    "/api/v1/seasons/{season}/player/{player}",
    "/api/v1/seasons/{season}/around/{player}",
]


def probe(client: APIClient, path: str, player_id: str, game: Game, other: Game) -> tuple[int, str]:
    """The status and body a probe gets, with the id it asked about blanked out."""
    season = Season.objects.get(game=game)
    response = client.get(path.format(player=player_id, game=game.pk, other=other.pk, season=season.pk))
    return response.status_code, response.content.decode().replace(player_id, "<id>")


@pytest.mark.parametrize("privacy", [Privacy.PRIVATE, Privacy.FRIENDS])
@pytest.mark.parametrize("path", PROBES)
def test_a_game_key_gets_the_same_answer_about_a_hidden_player_its_game_never_saw_as_about_no_one(
    api: Api, game: Game, game_key: str, other_game: Game, privacy: str, path: str
) -> None:
    now = timezone.now()
    save_season(game=game, name="Spring Cup", starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1))
    carol = make_player("carol", privacy=privacy)
    give(carol, achievement(other_game, "FIRST_ORE"))  # she exists, elsewhere
    client = api.as_key(game_key)

    about_carol = probe(client, path, str(carol.pk), game, other_game)
    about_no_one = probe(client, path, str(uuid.uuid4()), game, other_game)

    assert about_carol == about_no_one
    assert about_carol[0] == 404


def test_once_its_game_has_seen_a_hidden_player_the_key_is_answered_as_before(
    api: Api, game: Game, game_key: str, other_game: Game
) -> None:
    carol, erin = make_player("carol", privacy=Privacy.PRIVATE), make_player("erin")
    give(carol, achievement(other_game, "FIRST_ORE"))
    client = api.as_key(game_key)
    statistics = f"/api/v1/players/{carol.pk}/statistics"
    assert_error(client.get(statistics), 404, "not_found")

    give(carol, achievement(game, "FIRST_FLIGHT"))

    games = client.get(statistics).json()["games"]
    assert [row["game_id"] for row in games] == [str(game.pk)]  # her data in this game only
    assert_error(client.get(f"/api/v1/leaderboards/{other_game.pk}/player/{carol.pk}"), 403, "forbidden")
    # A public player is nobody's secret: answered whoever has seen her.
    assert client.get(f"/api/v1/players/{erin.pk}/statistics").json() == {"games": []}
