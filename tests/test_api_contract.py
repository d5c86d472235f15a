"""The API's contract with its callers: a player can ask who it is and change its settings,
credentials are checked before any input is read, and a malformed path is a JSON 404."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from rest_framework.test import APIClient

from stats.models import PlaySession
from tests.conftest import Api
from tests.helpers import assert_error
from tracker.models import Friendship, Game, Player, Privacy

ME = "/api/v1/players/me"


class TestWhoAmI:
    def test_a_player_token_learns_its_own_id_name_region_and_privacy(self, api: Api, alice: Player) -> None:
        response = api.as_player(alice).get(ME)

        assert response.status_code == 200, response.content
        assert response.json() == {
            "id": str(alice.pk),
            "username": "alice",
            "region": "eu",
            "privacy": "public",
        }

    def test_the_slash_flipped_alias_answers_too(self, api: Api, alice: Player) -> None:
        assert api.as_player(alice).get(ME + "/").json()["id"] == str(alice.pk)

    def test_a_game_key_is_refused_with_403(self, api: Api, game_key: str) -> None:
        assert_error(api.as_key(game_key).get(ME), 403, "forbidden")

    def test_an_anonymous_caller_gets_401(self, api: Api, db: Any) -> None:
        response = api.anonymous().get(ME)

        assert_error(response, 401, "not_authenticated")
        assert "WWW-Authenticate" in response


class TestChangingMySettings:
    def test_region_and_privacy_change_and_are_shown_back(self, api: Api, alice: Player) -> None:
        response = api.as_player(alice).patch(ME, {"region": "na", "privacy": "friends"}, format="json")

        assert response.status_code == 200, response.content
        assert response.json() == {"id": str(alice.pk), "username": "alice", "region": "na", "privacy": "friends"}
        alice.refresh_from_db()
        assert (alice.region, alice.privacy) == ("na", Privacy.FRIENDS)

    def test_fields_left_out_keep_their_values(self, api: Api, alice: Player) -> None:
        api.as_player(alice).patch(ME, {"privacy": "private"}, format="json")

        alice.refresh_from_db()
        assert (alice.region, alice.privacy, alice.email) == ("eu", Privacy.PRIVATE, "alice@example.com")

    def test_the_email_changes_but_is_never_shown(self, api: Api, alice: Player) -> None:
        response = api.as_player(alice).patch(ME, {"email": "new@example.com"}, format="json")

        assert response.status_code == 200, response.content
        assert "email" not in response.json()
        assert list(Player.objects.with_email("new@example.com")) == [alice]

    @pytest.mark.parametrize(
        "body",
        [
            {"region": "atlantis"},
            {"privacy": "secret"},
            {"email": "not an address"},
            {"username": "mallory"},  # not a setting: unknown fields are refused
            {"region": "na", "nickname": "x"},
        ],
    )
    def test_bad_input_is_a_400_that_changes_nothing(self, api: Api, alice: Player, body: dict[str, str]) -> None:
        assert_error(api.as_player(alice).patch(ME, body, format="json"), 400, "invalid")

        alice.refresh_from_db()
        assert (alice.username, alice.region, alice.privacy, alice.email) == (
            "alice",
            "eu",
            Privacy.PUBLIC,
            "alice@example.com",
        )

    def test_a_game_key_cannot_change_a_player(self, api: Api, game_key: str) -> None:
        assert_error(api.as_key(game_key).patch(ME, {"region": "na"}, format="json"), 403, "forbidden")

    def test_an_anonymous_caller_gets_401_before_its_body_is_read(self, api: Api, db: Any) -> None:
        assert_error(api.anonymous().patch(ME, {"region": "atlantis"}, format="json"), 401, "not_authenticated")


# --- Authentication comes first --------------------------------------------------------------

UNKNOWN = "00000000-0000-4000-8000-00000000dead"
# A body that is wrong in every way a validator or a lookup would notice.
BAD_BODY = {"player_id": UNKNOWN, "game_id": "no-such-game", "achievement": "", "unlocks": [], "unknown": 1}


def fill_path(path: str, parameters: list[dict[str, Any]]) -> str:
    """The operation's path with its parameters naming nothing that exists."""
    for parameter in parameters:
        if parameter["in"] != "path":
            continue
        schema = parameter["schema"]
        if "enum" in schema:
            value = schema["enum"][0]
        elif schema.get("type") == "integer":
            value = "987654"
        elif schema.get("format") == "uuid":
            value = UNKNOWN
        else:
            value = "no-such-game"
        path = path.replace("{" + parameter["name"] + "}", value)
    return path


def credentialed_operations(schema: dict[str, Any]) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """Every documented operation that does not list anonymous access in its security."""
    return [
        (method, path, operation.get("parameters", []))
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if {} not in operation.get("security", [{}])
    ]


def test_every_operation_that_needs_credentials_answers_401_to_an_anonymous_caller_first(api: Api, db: Any) -> None:
    schema = api.anonymous().get("/api/schema/", {"format": "json"}).json()
    operations = credentialed_operations(schema)
    # The list is the schema's: guard against it shrinking to nothing.
    assert {("post", "/api/v1/sessions"), ("patch", "/api/v1/players/me"), ("post", "/api/v1/friends/requests")} <= {
        (method, path) for method, path, _ in operations
    }

    answers = {}
    for method, path, parameters in operations:
        url = fill_path(path, parameters) + "?game=no-such-game&limit=0&start=x"
        client: APIClient = api.anonymous()
        response = getattr(client, method)(url, BAD_BODY, format="json")
        answers[f"{method.upper()} {path}"] = response.status_code
        assert_error(response, 401, "not_authenticated")
    assert set(answers.values()) == {401}, answers


def test_an_anonymous_session_report_does_not_learn_whether_a_player_exists(api: Api, alice: Player, game: Any) -> None:
    body = {
        "session_id": "s-1",
        "game_id": str(game.pk),
        "started_at": "2026-11-30T10:00:00Z",
        "ended_at": "2026-11-30T11:00:00Z",
    }
    known = api.anonymous().post("/api/v1/sessions", {**body, "player_id": str(alice.pk)}, format="json")
    unknown = api.anonymous().post("/api/v1/sessions", {**body, "player_id": UNKNOWN}, format="json")

    assert_error(known, 401, "not_authenticated")
    assert_error(unknown, 401, "not_authenticated")
    assert known.json() == unknown.json()
    assert not PlaySession.objects.exists()


def test_an_anonymous_friend_request_does_not_learn_whether_a_username_exists(
    api: Api, alice: Player, bob: Player
) -> None:
    known = api.anonymous().post("/api/v1/friends/requests", {"username": "bob"}, format="json")
    unknown = api.anonymous().post("/api/v1/friends/requests", {"username": "nobody-here"}, format="json")

    assert known.json() == unknown.json()
    assert_error(known, 401, "not_authenticated")
    assert not Friendship.objects.exists()


def test_a_manifest_for_an_unknown_game_from_nobody_is_a_401_not_a_404(api: Api, db: Any) -> None:
    response = api.anonymous().put("/api/v1/games/no-such-game/achievements", {}, format="json")

    assert_error(response, 401, "not_authenticated")


def test_public_reads_still_answer_anonymous_callers(api: Api, alice: Player, game: Any) -> None:
    assert api.anonymous().get(f"/api/v1/players/{alice.pk}/statistics").status_code == 200
    assert api.anonymous().get(f"/api/v1/games/{game.slug}/achievements").status_code == 200
    assert api.anonymous().get("/api/v1/leaderboards/global").status_code == 200


# --- Malformed path parameters -----------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/api/v1/players/not-a-uuid/statistics"),
        ("get", "/api/v1/players/not-a-uuid/achievements"),
        ("get", "/api/v1/players/not-a-uuid/dashboard"),
        ("get", "/api/v1/players/not-a-uuid/history"),
        ("get", "/api/v1/seasons/x"),
        ("get", "/api/v1/seasons/x/standings"),
        ("get", "/api/v1/seasons/x/player/y"),
        ("get", f"/api/v1/seasons/{UNKNOWN}/around/y"),
        ("get", "/api/v1/leaderboards/global/player/x"),
        ("get", "/api/v1/leaderboards/global/around/x"),
        ("get", "/api/v1/leaderboards/star-raiders/player/x"),
        ("get", "/api/v1/leaderboards/star-raiders/around/x"),
        ("post", "/api/v1/friends/requests/abc/accept"),
        ("delete", "/api/v1/friends/not-a-uuid"),
        ("get", "/api/v1/no-such-endpoint"),
    ],
)
def test_a_malformed_path_parameter_is_a_json_404(api: Api, alice: Player, method: str, path: str) -> None:
    for client in (api.anonymous(), api.as_player(alice)):
        response = getattr(client, method)(path)

        assert_error(response, 404, "not_found")


@pytest.mark.parametrize("path", ["/api/v1/seasons/{id}", "/api/v1/players/{id}/statistics"])
def test_a_well_formed_id_of_nothing_is_a_json_404_too(api: Api, db: Any, path: str) -> None:
    assert_error(api.anonymous().get(path.format(id=uuid.uuid4())), 404, "not_found")


# --- Bodies of one of several shapes, and game references ---------------------------------


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/api/v1/friends/requests", {"username": "bob", "player_id": UNKNOWN}, "username"),
        ("/api/v1/friends/requests", {}, "username"),
        ("/api/v1/achievements/unlock", {"achievement_id": UNKNOWN, "achievement": "FIRST_FLIGHT"}, "achievement_id"),
        ("/api/v1/achievements/unlock", {}, "achievement_id"),
    ],
    ids=["friend-both", "friend-neither", "unlock-both", "unlock-neither"],
)
def test_a_body_of_both_shapes_or_neither_is_refused_naming_the_field(
    api: Api, alice: Player, bob: Player, path: str, body: dict[str, str], field: str
) -> None:
    if path.startswith("/api/v1/achievements"):
        body = {"player_id": str(alice.pk), **body}

    error = assert_error(api.as_player(alice).post(path, body, format="json"), 400, "invalid")

    assert field in error["fields"], error
    assert not Friendship.objects.exists()


def test_a_game_named_by_what_no_game_could_be_called_is_a_400_naming_it(api: Api, alice: Player) -> None:
    error = assert_error(api.anonymous().get(f"/api/v1/players/{alice.pk}/statistics", {"game": "no such"}), 400)

    assert "game" in error["fields"]


@pytest.mark.parametrize("reporter, source", [("game key", "server"), ("player", "client")])
def test_a_session_report_says_who_reported_it(
    api: Api, alice: Player, game: Any, game_key: str, reporter: str, source: str
) -> None:
    client = api.as_key(game_key) if reporter == "game key" else api.as_player(alice)
    Game.objects.filter(pk=game.pk).update(created=game.created - timedelta(days=1))  # no session predates its game
    body = {"player_id": str(alice.pk), "game_id": game.slug, "session_id": "s-1", "duration_seconds": 600}

    response = client.post("/api/v1/sessions", body, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["source"] == source
    assert PlaySession.objects.get().source == source
