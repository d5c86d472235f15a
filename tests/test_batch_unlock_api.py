"""POST /api/v1/achievements/unlock/batch: one result per item, in order; bad items never stop good ones."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.utils import timezone

from achievements.models import Unlock
from tests.conftest import Api, achievement, make_player
from tests.helpers import BATCH_URL, assert_error, give, post, snapshot, stats, totals, unlocked_names
from tracker.models import Game, Player


def item(player: Player, game: Game, api_name: str) -> dict[str, str]:
    return {"player_id": str(player.pk), "achievement_id": str(achievement(game, api_name).pk)}


def batch(client: Any, unlocks: Any) -> Any:
    return post(client, BATCH_URL, {"unlocks": unlocks})


def test_a_mixed_batch_answers_each_item_in_order_and_records_only_the_good_ones(
    api: Api, alice: Player, bob: Player, game: Game, other_game: Game, game_key: str
) -> None:
    give(bob, achievement(game, "ACE_PILOT"))
    unknown_achievement = {"player_id": str(alice.pk), "achievement_id": str(uuid.uuid4())}
    unknown_player = {"player_id": str(uuid.uuid4()), "achievement": "ACE_PILOT"}
    unlocks = [
        item(alice, game, "ACE_PILOT"),  # 0: new
        item(bob, game, "ACE_PILOT"),  # 1: already unlocked before
        unknown_achievement,  # 2: unknown achievement
        "not an object",  # 3: malformed
        {**item(alice, game, "FIRST_FLIGHT"), "colour": "red"},  # 4: unknown field
        item(alice, other_game, "FIRST_ORE"),  # 5: another game's achievement
        {"player_id": str(alice.pk), "achievement": "SECRET_ENDING"},  # 6: new, by api_name
        unknown_player,  # 7: unknown player
        {"player_id": "nope", "achievement": "KILL_100"},  # 8: malformed player id
    ]

    response = batch(api.as_key(game_key), unlocks)

    assert response.status_code == 200, response.content
    body = response.json()
    results = body["results"]
    assert [r["index"] for r in results] == list(range(len(unlocks)))
    assert [r["status"] for r in results] == [201, 200, 404, 400, 400, 403, 201, 404, 400]
    assert (body["created"], body["already_unlocked"], body["failed"]) == (2, 1, 6)

    assert results[0]["already_unlocked"] is False
    assert results[0]["player_id"] == str(alice.pk)
    assert results[0]["achievement_id"] == str(achievement(game, "ACE_PILOT").pk)
    assert results[1]["already_unlocked"] is True
    assert results[6]["achievement_id"] == str(achievement(game, "SECRET_ENDING").pk)
    assert results[2]["error"]["code"] == "not_found"
    assert results[2]["achievement_id"] == unknown_achievement["achievement_id"]
    assert results[3]["error"]["code"] == "invalid"
    assert results[3]["player_id"] is None
    assert "colour" in results[4]["error"]["fields"]
    assert results[5]["error"]["code"] == "forbidden"
    assert results[7]["error"]["code"] == "not_found"
    assert results[7]["player_id"] == unknown_player["player_id"]
    assert "player_id" in results[8]["error"]["fields"]

    assert unlocked_names(alice) == {"ACE_PILOT", "SECRET_ENDING"}
    assert unlocked_names(bob) == {"ACE_PILOT"}
    assert stats(alice, game) == (75, 2, 50.0)
    assert stats(alice, other_game) is None
    assert totals(alice) == (75, 2)
    assert totals(bob) == (25, 1)


def test_the_same_pair_twice_in_one_batch_counts_once(api: Api, alice: Player, game: Game, game_key: str) -> None:
    ace = item(alice, game, "ACE_PILOT")

    response = batch(api.as_key(game_key), [ace, {"player_id": str(alice.pk), "achievement": "ACE_PILOT"}])

    assert response.status_code == 200, response.content
    body = response.json()
    assert [r["status"] for r in body["results"]] == [201, 200]
    assert [r["already_unlocked"] for r in body["results"]] == [False, True]
    assert (body["created"], body["already_unlocked"], body["failed"]) == (1, 1, 0)
    assert Unlock.objects.filter(player=alice).count() == 1
    assert stats(alice, game) == (25, 1, 25.0)
    assert totals(alice) == (25, 1)


def test_one_batch_for_many_players_updates_each_players_stats(
    api: Api, alice: Player, bob: Player, charlie: Player, game: Game, game_key: str
) -> None:
    unlocks = [
        item(alice, game, "FIRST_FLIGHT"),
        item(bob, game, "FIRST_FLIGHT"),
        item(alice, game, "ACE_PILOT"),
        item(charlie, game, "SECRET_ENDING"),
        item(bob, game, "SECRET_ENDING"),
        item(alice, game, "SECRET_ENDING"),
    ]

    response = batch(api.as_key(game_key), unlocks)

    assert response.json()["created"] == 6
    assert stats(alice, game) == (85, 3, 75.0)
    assert stats(bob, game) == (60, 2, 50.0)
    assert stats(charlie, game) == (50, 1, 25.0)
    assert (totals(alice), totals(bob), totals(charlie)) == ((85, 3), (60, 2), (50, 1))


def test_a_player_token_batch_follows_the_single_unlock_rules(api: Api, alice: Player, bob: Player, game: Game) -> None:
    unlocks = [
        item(alice, game, "FIRST_FLIGHT"),  # own, client-unlockable
        item(bob, game, "FIRST_FLIGHT"),  # somebody else
        item(alice, game, "ACE_PILOT"),  # server only
        {"player_id": str(alice.pk), "achievement": "FIRST_FLIGHT"},  # api_name needs a game key
    ]

    body = batch(api.as_player(alice), unlocks).json()

    assert [r["status"] for r in body["results"]] == [201, 403, 403, 403]
    assert unlocked_names(alice) == {"FIRST_FLIGHT"}
    assert unlocked_names(bob) == set()


def test_an_item_with_a_future_timestamp_fails_alone(api: Api, alice: Player, game: Game, game_key: str) -> None:
    future = (timezone.now() + timedelta(days=2)).isoformat()
    unlocks = [{**item(alice, game, "ACE_PILOT"), "timestamp": future}, item(alice, game, "FIRST_FLIGHT")]

    body = batch(api.as_key(game_key), unlocks).json()

    assert [r["status"] for r in body["results"]] == [400, 201]
    assert "timestamp" in body["results"][0]["error"]["fields"]
    assert unlocked_names(alice) == {"FIRST_FLIGHT"}


def test_more_than_100_items_is_rejected_and_nothing_is_written(
    api: Api, alice: Player, game: Game, game_key: str
) -> None:
    before = snapshot()

    response = batch(api.as_key(game_key), [item(alice, game, "ACE_PILOT")] * 101)

    error = assert_error(response, 400, "invalid")
    assert error["fields"]["unlocks"] == ["At most 100 items per batch."]
    assert snapshot() == before


def test_exactly_100_items_is_accepted(api: Api, alice: Player, game: Game, game_key: str) -> None:
    response = batch(api.as_key(game_key), [item(alice, game, "ACE_PILOT")] * 100)

    assert response.status_code == 200
    assert (response.json()["created"], response.json()["already_unlocked"]) == (1, 99)
    assert stats(alice, game) == (25, 1, 25.0)


def test_an_empty_batch_is_rejected(api: Api, game_key: str) -> None:
    error = assert_error(batch(api.as_key(game_key), []), 400, "invalid")

    assert "unlocks" in error["fields"]


def test_unlocks_must_be_a_list(api: Api, alice: Player, game: Game, game_key: str) -> None:
    before = snapshot()

    error = assert_error(batch(api.as_key(game_key), item(alice, game, "ACE_PILOT")), 400, "invalid")

    assert "unlocks" in error["fields"]
    assert snapshot() == before


def test_a_batch_without_credentials_is_401(api: Api, alice: Player, game: Game) -> None:
    before = snapshot()

    response = batch(api.anonymous(), [item(alice, game, "FIRST_FLIGHT")])

    assert_error(response, 401)
    assert response["WWW-Authenticate"]
    assert snapshot() == before


def test_a_batch_from_a_new_player_counts_completion_over_the_whole_set(api: Api, game: Game, game_key: str) -> None:
    dave = make_player("dave")
    names = ["FIRST_FLIGHT", "ACE_PILOT", "SECRET_ENDING", "KILL_100"]

    body = batch(api.as_key(game_key), [item(dave, game, name) for name in names]).json()

    assert body["created"] == 4
    assert stats(dave, game) == (100, 4, 100.0)


def test_a_failed_items_fields_map_each_field_to_its_messages(api: Api, alice: Player, game_key: str) -> None:
    """As the schema says (ItemError.fields: field name → list of strings), whatever was
    wrong: a malformed item, an unknown field, a bad value, a missing one."""
    unlocks = [
        "not an object",
        {"player_id": str(alice.pk), "achievement": "ACE_PILOT", "colour": "red"},
        {"player_id": "nope", "achievement": "KILL_100", "timestamp": "yesterday"},
        {"achievement": "KILL_100"},
    ]

    results = batch(api.as_key(game_key), unlocks).json()["results"]

    fields = [r["error"]["fields"] for r in results]
    assert [sorted(f) for f in fields] == [
        ["non_field_errors"],
        ["colour"],
        ["player_id", "timestamp"],
        ["player_id"],
    ]
    for messages in (m for f in fields for m in f.values()):
        assert isinstance(messages, list) and messages
        assert all(isinstance(message, str) and message for message in messages)


def test_items_in_any_form_the_schema_takes_answer_as_plain_ones(
    api: Api, alice: Player, bob: Player, game: Game, game_key: str
) -> None:
    ace = achievement(game, "ACE_PILOT")
    unlocks = [
        {"player_id": str(alice.pk), "achievement": "ACE_PILOT"},  # plain
        {"player_id": alice.pk.hex, "achievement": " FIRST_FLIGHT "},  # trimmed, id without dashes
        {"player_id": str(bob.pk).upper(), "achievement_id": "{" + str(ace.pk) + "}"},
        {"player_id": str(bob.pk), "achievement": "   "},  # blank
        {"player_id": str(bob.pk), "achievement": "X" * 65},  # too long
    ]

    response = post(api.as_key(game_key), BATCH_URL, {"unlocks": unlocks})

    assert [result["status"] for result in response.json()["results"]] == [201, 201, 201, 400, 400]
    assert unlocked_names(alice) == {"ACE_PILOT", "FIRST_FLIGHT"} and unlocked_names(bob) == {"ACE_PILOT"}
    null = post(api.as_key(game_key), BATCH_URL, {"unlocks": [None]})
    assert [result["status"] for result in null.json()["results"]] == [400]  # fails alone, as a string does
