"""Inputs an attacker or a broken client sends that used to slip through or overreach
(issue 19): a null batch item, dates in non-ASCII digits, a play session from before its
game existed, and ids a game key probes to learn whether a private player exists."""

from __future__ import annotations

from tests.conftest import Api, achievement
from tests.helpers import BATCH_URL, post, unlocked_names
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
