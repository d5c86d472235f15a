"""Players: registration, tokens, and GET /api/v1/players/{id}/achievements with privacy respected."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from achievements.models import Achievement
from tests.conftest import PASSWORD, Api, achievement, make_player
from tests.helpers import assert_error, give, post
from tracker.models import Friendship, Game, Player, Privacy

REGISTER_URL = "/api/v1/players/"
TOKEN_URL = "/api/v1/auth/token/"
REFRESH_URL = "/api/v1/auth/token/refresh/"


def registration(**changes: Any) -> dict[str, Any]:
    body = {"username": "dora", "email": "dora@example.com", "password": "a-long-unusual-passphrase", "region": "oce"}
    return body | changes


def achievements_url(player: Player, query: str = "") -> str:
    return f"/api/v1/players/{player.pk}/achievements{query}"


def listed(response: Any) -> list[str]:
    """The api_names of the listed achievements, looked up by id: a hidden one is listed
    masked (no api_name) to callers who have not unlocked it (tests/test_privacy_matrix.py)."""
    assert response.status_code == 200, response.content
    ids = [item["id"] for item in response.json()["achievements"]]
    names = {str(pk): name for pk, name in Achievement.objects.filter(pk__in=ids).values_list("pk", "api_name")}
    return [names[pk] for pk in ids]


# --- Registration ------------------------------------------------------------------------


def test_a_player_registers(api: Api, db: Any) -> None:
    response = post(api.anonymous(), REGISTER_URL, registration())

    assert response.status_code == 201, response.content
    player = Player.objects.get(username="dora")
    assert response.json() == {"id": str(player.pk), "username": "dora", "region": "oce"}
    assert player.check_password("a-long-unusual-passphrase")
    assert player.email == "dora@example.com"
    assert player.privacy == Privacy.PUBLIC


def test_a_username_taken_in_another_case_is_a_conflict(api: Api, alice: Player) -> None:
    response = post(api.anonymous(), REGISTER_URL, registration(username="ALICE"))

    error = assert_error(response, 409, "conflict")
    assert "username" in error["fields"]
    assert Player.objects.filter(username__iexact="alice").count() == 1


def test_sign_up_never_tells_whether_an_email_has_an_account(api: Api, alice: Player) -> None:
    """Emails are not unique (docs/players.md): a stranger cannot learn from sign-up which
    addresses are registered; the answer for a used address is that of a fresh one."""
    used = post(api.anonymous(), REGISTER_URL, registration(email="Alice@Example.com"))
    fresh = post(api.anonymous(), REGISTER_URL, registration(username="erin", email="erin@example.com"))

    assert used.status_code == fresh.status_code == 201
    assert used.json().keys() == fresh.json().keys()
    assert set(Player.objects.with_email("alice@example.com")) == {alice, Player.objects.get(username="dora")}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"region": "mars"}, "region"),
        ({"region": "EU"}, "region"),
        ({"username": "no spaces allowed"}, "username"),
        ({"username": "x"}, "username"),
        ({"email": "not-an-email"}, "email"),
        ({"nickname": "dd"}, "nickname"),
    ],
    ids=["unknown-region", "region-upper-case", "username-with-spaces", "username-too-short", "bad-email", "unknown"],
)
def test_invalid_registrations_name_the_field(api: Api, db: Any, changes: dict[str, Any], field: str) -> None:
    error = assert_error(post(api.anonymous(), REGISTER_URL, registration(**changes)), 400, "invalid")

    assert field in error["fields"]
    assert not Player.objects.exists()


@pytest.mark.parametrize(
    "password", ["password", "12345678", "dora@example.com"], ids=["common", "numeric", "like-email"]
)
def test_a_weak_password_is_rejected_naming_the_field(api: Api, db: Any, password: str) -> None:
    error = assert_error(post(api.anonymous(), REGISTER_URL, registration(password=password)), 400, "invalid")

    assert error["fields"]["password"]
    assert not Player.objects.exists()


def test_the_email_is_stored_encrypted_and_still_findable(api: Api, db: Any) -> None:
    post(api.anonymous(), REGISTER_URL, registration())
    player = Player.objects.get(username="dora")

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT email, email_digest FROM {connection.ops.quote_name(Player._meta.db_table)} WHERE id = %s",
            [Player._meta.pk.get_db_prep_value(player.pk, connection)],
        )
        stored, digest = cursor.fetchone()
    assert stored and digest
    assert "dora@example.com" not in stored.lower() and "example.com" not in stored.lower()
    assert "dora@example.com" not in digest.lower()
    assert list(Player.objects.with_email("Dora@Example.com ")) == [player]


# --- Tokens ------------------------------------------------------------------------------


def test_a_player_gets_an_access_and_a_refresh_token(api: Api, charlie: Player) -> None:
    response = post(api.anonymous(), TOKEN_URL, {"username": "charlie", "password": PASSWORD})

    assert response.status_code == 200, response.content
    tokens = response.json()
    assert set(tokens) == {"access", "refresh"}
    # The access token works: charlie may read his own private profile with it.
    client = api.anonymous()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert client.get(achievements_url(charlie)).status_code == 200


def test_a_wrong_password_gets_no_token(api: Api, alice: Player) -> None:
    response = post(api.anonymous(), TOKEN_URL, {"username": "alice", "password": "wrong"})

    assert_error(response, 401)
    assert "access" not in response.json()


def test_refreshing_rotates_and_the_old_refresh_token_is_then_rejected(api: Api, alice: Player) -> None:
    tokens = post(api.anonymous(), TOKEN_URL, {"username": "alice", "password": PASSWORD}).json()

    rotated = post(api.anonymous(), REFRESH_URL, {"refresh": tokens["refresh"]})

    assert rotated.status_code == 200, rotated.content
    fresh = rotated.json()
    assert set(fresh) == {"access", "refresh"}
    assert fresh["refresh"] != tokens["refresh"]
    assert_error(post(api.anonymous(), REFRESH_URL, {"refresh": tokens["refresh"]}), 401)
    assert post(api.anonymous(), REFRESH_URL, {"refresh": fresh["refresh"]}).status_code == 200


def test_a_rejected_refresh_token_gets_a_readable_message(api: Api, alice: Player) -> None:
    tokens = post(api.anonymous(), TOKEN_URL, {"username": "alice", "password": PASSWORD}).json()
    post(api.anonymous(), REFRESH_URL, {"refresh": tokens["refresh"]})

    error = assert_error(post(api.anonymous(), REFRESH_URL, {"refresh": tokens["refresh"]}), 401, "token_not_valid")

    assert not error["message"].startswith("detail:"), error["message"]


def test_a_garbage_bearer_token_is_401(api: Api, alice: Player) -> None:
    client = api.anonymous()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")

    response = client.get(achievements_url(alice))

    assert_error(response, 401)
    assert response["WWW-Authenticate"]


# --- A player's achievements -------------------------------------------------------------


@pytest.fixture
def alice_history(alice: Player, game: Game, other_game: Game) -> list[str]:
    """Alice's unlocks a day apart, oldest first; returns their api_names newest first."""
    start = timezone.now() - timedelta(days=10)
    order = [(game, "FIRST_FLIGHT"), (other_game, "FIRST_ORE"), (game, "SECRET_ENDING"), (game, "ACE_PILOT")]
    for day, (where, name) in enumerate(order):
        give(alice, achievement(where, name), at=start + timedelta(days=day))
    return [name for _, name in reversed(order)]


def test_a_players_achievements_are_listed_newest_first(api: Api, alice: Player, alice_history: list[str]) -> None:
    response = api.anonymous().get(achievements_url(alice))

    assert listed(response) == alice_history
    body = response.json()
    assert body["total"] == 4
    newest = body["achievements"][0]
    assert newest["points"] == 25 and newest["name"] == "Ace Pilot"
    assert datetime.fromisoformat(newest["unlocked_at"]) > datetime.fromisoformat(
        body["achievements"][1]["unlocked_at"]
    )


def test_the_list_pages_with_limit_and_offset(api: Api, alice: Player, alice_history: list[str]) -> None:
    client = api.anonymous()

    first = client.get(achievements_url(alice, "?limit=3"))
    second = client.get(achievements_url(alice, "?limit=3&offset=3"))
    beyond = client.get(achievements_url(alice, "?limit=3&offset=9"))

    assert listed(first) == alice_history[:3]
    assert listed(second) == alice_history[3:]
    assert listed(beyond) == []
    assert first.json()["total"] == second.json()["total"] == beyond.json()["total"] == 4


def test_the_list_filters_by_game_id_or_slug(
    api: Api, alice: Player, game: Game, other_game: Game, alice_history: list[str]
) -> None:
    client = api.anonymous()

    by_id = client.get(achievements_url(alice, f"?game={game.pk}"))
    by_slug = client.get(achievements_url(alice, "?game=moon-miners"))

    assert listed(by_id) == ["ACE_PILOT", "SECRET_ENDING", "FIRST_FLIGHT"]
    assert by_id.json()["total"] == 3
    assert listed(by_slug) == ["FIRST_ORE"]
    assert by_slug.json()["total"] == 1


def test_filtering_by_an_unknown_game_is_404(api: Api, alice: Player, alice_history: list[str]) -> None:
    assert_error(api.anonymous().get(achievements_url(alice, "?game=no-such-game")), 404, "not_found")


@pytest.mark.parametrize("query", ["?limit=0", "?limit=101", "?limit=lots", "?offset=-1"])
def test_a_bad_page_is_400(api: Api, alice: Player, query: str) -> None:
    error = assert_error(api.anonymous().get(achievements_url(alice, query)), 400, "invalid")

    assert set(error["fields"]) <= {"limit", "offset"} and error["fields"]


def test_an_unknown_player_is_404(api: Api, db: Any) -> None:
    assert_error(api.anonymous().get(f"/api/v1/players/{uuid.uuid4()}/achievements"), 404, "not_found")


@pytest.fixture
def charlie_history(charlie: Player, game: Game, other_game: Game) -> None:
    give(charlie, achievement(game, "ACE_PILOT"))
    give(charlie, achievement(other_game, "FIRST_ORE"))


def test_a_private_player_is_hidden_from_anonymous_callers(api: Api, charlie: Player, charlie_history: None) -> None:
    response = api.anonymous().get(achievements_url(charlie))

    assert_error(response, 403, "forbidden")
    assert "ACE_PILOT" not in response.content.decode()


def test_a_private_player_is_hidden_from_other_players(
    api: Api, bob: Player, charlie: Player, charlie_history: None
) -> None:
    assert_error(api.as_player(bob).get(achievements_url(charlie)), 403, "forbidden")


def test_a_private_player_sees_their_own_achievements(api: Api, charlie: Player, charlie_history: None) -> None:
    response = api.as_player(charlie).get(achievements_url(charlie))

    assert sorted(listed(response)) == ["ACE_PILOT", "FIRST_ORE"]


def test_a_game_key_sees_only_its_own_games_unlocks_of_a_private_player(
    api: Api, charlie: Player, other_game: Game, game_key: str, other_game_key: str, charlie_history: None
) -> None:
    ours = api.as_key(game_key).get(achievements_url(charlie))
    theirs = api.as_key(other_game_key).get(achievements_url(charlie))

    assert listed(ours) == ["ACE_PILOT"]
    assert ours.json()["total"] == 1
    assert listed(theirs) == ["FIRST_ORE"]
    assert theirs.json()["total"] == 1


def test_a_game_key_cannot_filter_a_private_player_to_another_game(
    api: Api, charlie: Player, game_key: str, charlie_history: None
) -> None:
    response = api.as_key(game_key).get(achievements_url(charlie, "?game=moon-miners"))

    assert_error(response, 403, "forbidden")
    assert "FIRST_ORE" not in response.content.decode()


def test_a_game_key_sees_every_game_of_a_public_player(
    api: Api, alice: Player, game_key: str, alice_history: list[str]
) -> None:
    assert listed(api.as_key(game_key).get(achievements_url(alice))) == alice_history


def test_a_friends_only_player_is_visible_to_friends_and_hidden_from_strangers(
    api: Api, alice: Player, bob: Player, game: Game
) -> None:
    erin = make_player("erin", privacy=Privacy.FRIENDS)
    give(erin, achievement(game, "ACE_PILOT"))
    Friendship.objects.create(requester=erin, addressee=alice, status=Friendship.Status.ACCEPTED)
    Friendship.objects.create(requester=bob, addressee=erin)  # pending: not a friend yet

    assert listed(api.as_player(alice).get(achievements_url(erin))) == ["ACE_PILOT"]
    assert_error(api.as_player(bob).get(achievements_url(erin)), 403, "forbidden")
    assert_error(api.anonymous().get(achievements_url(erin)), 403, "forbidden")
