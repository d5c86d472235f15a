"""Hostile input gets a 4xx and changes nothing, never a 500: JSON nested without end,
control characters in URLs, strings that are not text, dates at the ends of the calendar,
names no player or game could have."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from infra.parsers import MAX_JSON_DEPTH
from stats.models import PlaySession
from tests.conftest import Api
from tests.helpers import UNLOCK_URL, assert_error, snapshot
from tracker.models import Friendship, Game, Player

DEEP = "[" * 100_000


def everything() -> dict[str, Any]:
    """What any request here could write: the unlock tables, players, sessions, friends."""
    return {
        **snapshot(),
        "players": sorted(Player.objects.values_list("username", "password")),
        "sessions": sorted(PlaySession.objects.values_list("session_id", "started_at", "ended_at")),
        "friendships": sorted(Friendship.objects.values_list("requester_id", "addressee_id", "status")),
    }


@pytest.fixture
def callers(api: Api, alice: Player, bob: Player, game: Game, game_key: str) -> dict[str, APIClient]:
    return {"anonymous": api.anonymous(), "game key": api.as_key(game_key), "player": api.as_player(alice)}


def send(client: APIClient, method: str, path: str, body: str) -> Any:
    return getattr(client, method)(path, data=body, content_type="application/json")


# --- JSON nested without end --------------------------------------------------------------

JSON_ENDPOINTS = [
    ("anonymous", "post", "/api/v1/players/"),
    ("anonymous", "post", "/api/v1/auth/token/"),
    ("anonymous", "post", "/api/v1/auth/token/refresh/"),
    ("game key", "post", UNLOCK_URL),
    ("player", "post", UNLOCK_URL),
    ("game key", "post", "/api/v1/achievements/unlock/batch"),
    ("game key", "post", "/api/v1/achievements/progress"),
    ("game key", "post", "/api/v1/sessions"),
    ("game key", "put", "/api/v1/games/star-raiders/achievements"),
    ("player", "post", "/api/v1/friends/requests"),
]


@pytest.mark.parametrize(("caller", "method", "path"), JSON_ENDPOINTS)
def test_json_nested_without_end_is_a_400_parse_error(
    callers: dict[str, APIClient], caller: str, method: str, path: str
) -> None:
    before = everything()

    error = assert_error(send(callers[caller], method, path, DEEP), 400, "parse_error")

    assert f"nested deeper than {MAX_JSON_DEPTH} levels" in error["message"]
    assert everything() == before


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def test_nesting_is_refused_one_level_past_the_limit_and_not_before(callers: dict[str, APIClient]) -> None:
    key = callers["game key"]

    # At the limit the document parses, and is refused for what it is: not an unlock.
    assert_error(send(key, "post", UNLOCK_URL, nested(MAX_JSON_DEPTH)), 400, "invalid")
    assert_error(send(key, "post", UNLOCK_URL, nested(MAX_JSON_DEPTH + 1)), 400, "parse_error")


def test_deep_nesting_inside_an_object_counts_too(callers: dict[str, APIClient], alice: Player) -> None:
    body = f'{{"player_id": "{alice.pk}", "achievement": "ACE_PILOT", "extra": {nested(MAX_JSON_DEPTH)}}}'
    before = everything()

    assert_error(send(callers["game key"], "post", UNLOCK_URL, body), 400, "parse_error")
    assert everything() == before


# --- Strings that are not text ------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        '{"\\ud800": 1}',
        '{"username": "nova", "email": "nova@example.com", "password": "a long passphrase", "region": "\\udfff"}',
        '{"username": "nova", "email": "nova@example.com", "password": "a long passphrase", "region": "eu", "x": ["\\ud83d"]}',
    ],
)
def test_a_string_with_an_unpaired_surrogate_is_a_400_parse_error(callers: dict[str, APIClient], body: str) -> None:
    before = everything()

    assert_error(send(callers["anonymous"], "post", "/api/v1/players/", body), 400, "parse_error")
    assert everything() == before


def test_a_surrogate_pair_is_an_ordinary_character(callers: dict[str, APIClient], alice: Player) -> None:
    body = '{"username": "\\ud83d\\ude00"}'  # 😀, escaped as JSON allows

    error = assert_error(send(callers["player"], "post", "/api/v1/friends/requests", body), 404, "not_found")

    assert "😀" in error["message"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (UNLOCK_URL, {"achievement": "ACE\u0000PILOT"}, "achievement"),
        (UNLOCK_URL, {"achievement": "ACE_PILOT", "note\u0000": 1}, "note\u0000"),
        ("/api/v1/sessions", {"session_id": "s\u00001"}, "session_id"),
        ("/api/v1/sessions", {"session_id": "s-1", "game_id": "star\u0000raiders", "duration_seconds": 60}, "game_id"),
    ],
)
def test_a_nul_in_a_json_string_is_a_400_naming_the_field(
    callers: dict[str, APIClient], alice: Player, path: str, body: dict[str, Any], field: str
) -> None:
    before = everything()

    response = send(callers["game key"], "post", path, json.dumps({"player_id": str(alice.pk), **body}))

    assert field in assert_error(response, 400, "invalid")["fields"]
    assert everything() == before


# --- Control characters in the URL --------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/games/a%00b/achievements",
        "/api/v1/leaderboards/a%00b",
        "/api/v1/leaderboards/a%00b/friends",
        "/api/v1/friends/requests/1/a%00b",
        "/api/v1/games/star-raiders%0d%0a/achievements",
        "/api/v1/nothing%00here",
    ],
)
def test_a_control_character_in_an_api_path_is_a_json_400(callers: dict[str, APIClient], path: str) -> None:
    for client in callers.values():
        error = assert_error(client.get(path), 400, "invalid")
        assert "control character" in error["message"]


@pytest.mark.parametrize("path", ["/players/a%00b/", "/players/alice/games/a%00b/", "/friends/a%00b/remove/", "/x%7f/"])
def test_a_control_character_in_a_page_path_is_a_plain_400_page(api: Api, alice: Player, path: str) -> None:
    response = api.anonymous().get(path)

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("query", "field"),
    [("game=a%00b", "game"), ("limit=1%0a", "limit"), ("x%00=1", "x\u0000"), ("a=1&b=%1b%5b31m", "b")],
)
def test_a_control_character_in_a_query_string_is_a_json_400_naming_the_parameter(
    api: Api, alice: Player, query: str, field: str
) -> None:
    response = api.anonymous().get(f"/api/v1/players/{alice.pk}/achievements?{query}")

    assert assert_error(response, 400, "invalid")["fields"] == {field: ["Control characters are not allowed."]}


def test_a_control_character_in_a_page_query_string_is_a_400_page(api: Api, db: Any) -> None:
    response = api.anonymous().get("/leaderboards/?region=eu%00")

    assert response.status_code == 400


def test_a_write_with_a_control_character_in_its_url_changes_nothing(
    callers: dict[str, APIClient], alice: Player
) -> None:
    before = everything()
    body = json.dumps({"player_id": str(alice.pk), "achievement": "ACE_PILOT"})
    manifest = json.dumps({"slug": "star-raiders", "name": "Renamed", "achievements": []})

    assert_error(send(callers["game key"], "post", f"{UNLOCK_URL}?source=%00", body), 400, "invalid")
    assert_error(send(callers["game key"], "put", "/api/v1/games/star%00raiders/achievements", manifest), 400)
    assert everything() == before


def test_characters_that_are_not_controls_still_reach_the_view(api: Api, db: Any) -> None:
    error = assert_error(api.anonymous().get("/api/v1/games/%E2%80%AEnot-a-game/achievements"), 404, "not_found")

    assert "\u202enot-a-game" in error["message"]


@pytest.mark.parametrize("header", ["Api-Key ab\x00cd.efgh", "Api-Key ab\x7fcd.efgh", "Api-Key a b.c", "Api-Key .x"])
def test_a_game_key_no_key_could_be_is_a_401(api: Api, db: Any, header: str) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    assert_error(client.get("/api/v1/games/"), 401, "authentication_failed")


# --- Dates at the ends of the calendar ----------------------------------------------------

OUT_OF_RANGE = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
    "9999-12-31T23:59:59-14:00",  # after year 9999 in UTC
    "9999-12-31T23:59:59Z",
    "1969-12-31T23:59:59Z",
    "2100-01-01T00:00:00Z",
]


@pytest.mark.parametrize("moment", OUT_OF_RANGE)
@pytest.mark.parametrize("field", ["started_at", "ended_at"])
def test_a_play_session_at_the_ends_of_the_calendar_is_400(
    callers: dict[str, APIClient], alice: Player, moment: str, field: str
) -> None:
    before = everything()
    body = {"player_id": str(alice.pk), "session_id": "s-1", field: moment, "duration_seconds": 60}

    error = assert_error(send(callers["game key"], "post", "/api/v1/sessions", json.dumps(body)), 400, "invalid")

    assert field in error["fields"]
    assert everything() == before


@pytest.mark.parametrize("moment", OUT_OF_RANGE)
def test_an_unlock_timestamp_at_the_ends_of_the_calendar_is_400(
    callers: dict[str, APIClient], alice: Player, moment: str
) -> None:
    before = everything()
    body = {"player_id": str(alice.pk), "achievement": "ACE_PILOT", "timestamp": moment}

    error = assert_error(send(callers["game key"], "post", UNLOCK_URL, json.dumps(body)), 400, "invalid")

    assert "timestamp" in error["fields"]
    assert everything() == before


def test_a_batch_item_timestamp_out_of_range_fails_that_item_alone(
    callers: dict[str, APIClient], alice: Player
) -> None:
    good = {"player_id": str(alice.pk), "achievement": "FIRST_FLIGHT"}
    bad = {"player_id": str(alice.pk), "achievement": "ACE_PILOT", "timestamp": "0001-01-01T00:00:00+01:00"}

    response = send(
        callers["game key"], "post", "/api/v1/achievements/unlock/batch", json.dumps({"unlocks": [good, bad]})
    )

    assert response.status_code == 200, response.content
    assert [item["status"] for item in response.json()["results"]] == [201, 400]


def test_the_first_moment_of_the_range_is_accepted(callers: dict[str, APIClient], alice: Player) -> None:
    body = {"player_id": str(alice.pk), "achievement": "ACE_PILOT", "timestamp": "1970-01-01T00:00:00Z"}

    response = send(callers["game key"], "post", UNLOCK_URL, json.dumps(body))

    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("start=0001-01-01&end=0001-01-05", "start"),
        ("end=0001-01-01", "end"),
        ("start=9999-12-30&end=9999-12-31", "start"),
        ("start=2099-12-01&end=2100-01-01", "end"),
        ("start=1969-12-31&end=1970-01-05", "start"),
    ],
)
def test_a_history_range_at_the_ends_of_the_calendar_is_400(
    callers: dict[str, APIClient], alice: Player, query: str, field: str
) -> None:
    response = callers["player"].get(f"/api/v1/players/{alice.pk}/history?{query}")

    assert field in assert_error(response, 400, "invalid")["fields"]


def test_a_history_range_at_the_edges_of_the_range_is_answered(callers: dict[str, APIClient], alice: Player) -> None:
    for query in ("start=1970-01-01&end=1970-01-30", "start=2099-12-02&end=2099-12-31"):
        response = callers["player"].get(f"/api/v1/players/{alice.pk}/history?{query}")
        assert response.status_code == 200, response.content
        assert len(response.json()["days"]) == 30


# --- Names no player or game could have, in page routes -----------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "game=star-raiders&a=x/y&b=bob",
        "game=star-raiders&a=alice&b=..%2F..%2Fadmin",
        "game=star%20raiders&a=alice&b=bob",
        "game=star-raiders/x&a=alice&b=bob",
        "game=star-raiders&a=alice",
        "game=star-raiders&a=" + "x" * 151 + "&b=bob",
    ],
)
def test_a_compare_pick_naming_no_possible_comparison_is_404(
    api: Api, alice: Player, bob: Player, game: Game, query: str
) -> None:
    assert api.anonymous().get(f"/compare/?{query}").status_code == 404


def test_a_compare_pick_redirects_to_the_comparison(api: Api, alice: Player, bob: Player, game: Game) -> None:
    response = api.anonymous().get("/compare/?game=star-raiders&a=alice&b=bob")

    assert response.status_code == 302
    assert response["Location"] == "/compare/star-raiders/alice/bob/"


@pytest.mark.parametrize(
    "path",
    [
        "/compare/star-raiders/a%2Fb/bob/",
        "/compare/star-raiders/alice/%E2%80%AE/",
        "/compare/star-raiders/alice/" + "x" * 5000 + "/",
        "/players/a%2Fb/",
        "/players/%ED%A0%80/",
        "/players/" + "x" * 5000 + "/",
        "/players/alice/games/" + "x" * 5000 + "/",
        "/players/%25%27%22%3C/",
    ],
)
def test_a_page_route_naming_no_possible_player_is_404(
    api: Api, alice: Player, bob: Player, game: Game, path: str
) -> None:
    assert api.anonymous().get(path).status_code == 404
