"""Inputs an attacker or a broken client sends that used to slip through or overreach
(issue 19): a null batch item, dates in non-ASCII digits, a play session from before its
game existed. (Ids a game key probes: tests/test_key_probes.py.)"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from stats.models import PlaySession
from tests.conftest import Api, achievement
from tests.helpers import BATCH_URL, UNLOCK_URL, assert_error, post, unlocked_names
from tracker.models import Game, Player

# --- A null batch item fails alone -------------------------------------------------------


def test_a_null_batch_item_fails_alone_and_the_good_ones_are_unlocked(
    api: Api, alice: Player, game: Game, game_key: str
) -> None:
    unlocks = [
        {"player_id": str(alice.pk), "achievement": "ACE_PILOT"},
        None,
        {"player_id": str(alice.pk), "achievement_id": str(achievement(game, "FIRST_FLIGHT").pk)},
    ]

    response = post(api.as_key(game_key), BATCH_URL, {"unlocks": unlocks})

    assert response.status_code == 200, response.content
    body = response.json()
    assert [result["status"] for result in body["results"]] == [201, 400, 201]
    assert (body["created"], body["already_unlocked"], body["failed"]) == (2, 0, 1)
    failed = body["results"][1]
    assert (failed["index"], failed["player_id"], failed["achievement_id"]) == (1, None, None)
    assert failed["error"]["code"] == "invalid"
    assert list(failed["error"]["fields"]) == ["non_field_errors"]
    assert unlocked_names(alice) == {"ACE_PILOT", "FIRST_FLIGHT"}


def test_a_batch_of_nulls_only_answers_each_and_writes_nothing(api: Api, alice: Player, game_key: str) -> None:
    body = post(api.as_key(game_key), BATCH_URL, {"unlocks": [None, None]}).json()

    assert [result["status"] for result in body["results"]] == [400, 400]
    assert body["failed"] == 2
    assert unlocked_names(alice) == set()


# --- Dates in ASCII digits only ----------------------------------------------------------

FULLWIDTH_YEAR = "\uff12\uff10\uff12\uff16"  # ２０２６
ARABIC_INDIC_YEAR = "\u0662\u0660\u0662\u0666"  # ٢٠٢٦


def assert_names_field(response: Any, field: str) -> None:
    error = assert_error(response, 400, "invalid")
    assert field in error["fields"], error
    assert "ASCII" in " ".join(error["fields"][field]), error


@pytest.mark.parametrize("year", [FULLWIDTH_YEAR, ARABIC_INDIC_YEAR])
def test_a_date_in_another_scripts_digits_is_a_400_naming_the_parameter(
    api: Api, alice: Player, game: Game, game_key: str, year: str
) -> None:
    player, key = api.as_player(alice), api.as_key(game_key)

    assert_names_field(player.get(f"/api/v1/players/{alice.pk}/history?start={year}-01-01"), "start")
    assert_names_field(key.get(f"/api/v1/games/{game.pk}/analytics?end={year}-01-01"), "end")


def test_a_time_in_another_scripts_digits_is_a_400_naming_the_field(
    api: Api, alice: Player, game: Game, game_key: str
) -> None:
    client = api.as_key(game_key)
    ace = str(achievement(game, "ACE_PILOT").pk)
    hour = "\uff11\uff12"  # １２

    unlock = post(
        client,
        UNLOCK_URL,
        {"player_id": str(alice.pk), "achievement_id": ace, "timestamp": f"2026-01-01T{hour}:00:00Z"},
    )
    session = post(
        client,
        "/api/v1/sessions",
        {
            "player_id": str(alice.pk),
            "session_id": "s-1",
            "started_at": f"{FULLWIDTH_YEAR}-01-01T10:00:00Z",
            "duration_seconds": 60,
        },
    )

    assert_names_field(unlock, "timestamp")
    assert_names_field(session, "started_at")
    assert unlocked_names(alice) == set()


# --- Play sessions lie in their game's lifetime ------------------------------------------


def test_a_play_session_from_before_its_game_existed_is_a_400_naming_started_at(
    api: Api, alice: Player, game: Game, game_key: str
) -> None:
    client = api.as_key(game_key)
    in_1970 = {"started_at": "1970-01-01T00:00:00Z", "ended_at": "1970-01-01T01:00:00Z"}
    an_hour_before = (game.created - timedelta(hours=1)).isoformat()

    old = post(client, "/api/v1/sessions", {"player_id": str(alice.pk), "session_id": "s-1970", **in_1970})
    early = post(
        client,
        "/api/v1/sessions",
        {"player_id": str(alice.pk), "session_id": "s-early", "started_at": an_hour_before, "duration_seconds": 60},
    )

    for refused in (old, early):
        error = assert_error(refused, 400, "invalid")
        assert list(error["fields"]) == ["started_at"]
    assert not PlaySession.objects.exists()
