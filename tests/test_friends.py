"""Friends: the API to ask, accept, decline, remove and withdraw; the friends board of a
game; and rival alerts when a friend passes you."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIClient

from leaderboards.services import hide_player
from tests.conftest import Api, achievement, make_player
from tests.helpers import assert_error, give, post, unlock
from tracker.models import Friendship, Game, Notification, Player, Privacy

FRIENDS_URL = "/api/v1/friends"
REQUESTS_URL = "/api/v1/friends/requests"


def ask(client: APIClient, **body: Any) -> Response:
    return post(client, REQUESTS_URL, body)


def answer(client: APIClient, request_id: int, verdict: str) -> Response:
    return client.post(f"{REQUESTS_URL}/{request_id}/{verdict}")


def remove(client: APIClient, other: Player) -> Response:
    return client.delete(f"{FRIENDS_URL}/{other.pk}")


def names(rows: list[dict[str, Any]]) -> list[str]:
    return [row["username"] for row in rows]


def friends_of(api: Api, player: Player) -> dict[str, list[str]]:
    response = api.as_player(player).get(FRIENDS_URL)
    assert response.status_code == 200, response.content
    return {key: names(rows) for key, rows in response.json().items()}


def befriend(a: Player, b: Player) -> Friendship:
    return Friendship.objects.create(requester=a, addressee=b, status=Friendship.Status.ACCEPTED)


# --- Requests -----------------------------------------------------------------------------


class TestRequests:
    def test_a_player_asks_another_by_username(self, api: Api, alice: Player, bob: Player) -> None:
        response = ask(api.as_player(alice), username="bob")

        assert response.status_code == 201, response.content
        request = Friendship.objects.get()
        assert response.json() == {"id": request.pk, "player_id": str(bob.pk), "username": "bob", "status": "pending"}
        assert (request.requester, request.addressee, request.status) == (alice, bob, "pending")
        assert friends_of(api, alice) == {"friends": [], "incoming": [], "outgoing": ["bob"]}
        assert friends_of(api, bob) == {"friends": [], "incoming": ["alice"], "outgoing": []}

    def test_a_username_matches_whatever_its_case(self, api: Api, alice: Player, bob: Player) -> None:
        assert ask(api.as_player(alice), username="BoB").status_code == 201
        assert Friendship.objects.get().addressee == bob

    def test_a_player_asks_another_by_player_id(self, api: Api, alice: Player, bob: Player) -> None:
        response = ask(api.as_player(alice), player_id=str(bob.pk))
        assert response.status_code == 201, response.content
        assert response.json()["username"] == "bob"

    def test_the_addressee_accepts(self, api: Api, alice: Player, bob: Player) -> None:
        request_id = ask(api.as_player(alice), username="bob").json()["id"]

        response = answer(api.as_player(bob), request_id, "accept")

        assert response.status_code == 200, response.content
        assert response.json() == {
            "id": request_id,
            "player_id": str(alice.pk),
            "username": "alice",
            "status": "accepted",
        }
        assert Friendship.objects.are_friends(alice, bob)
        assert Friendship.objects.get().accepted_at is not None
        assert friends_of(api, alice) == {"friends": ["bob"], "incoming": [], "outgoing": []}
        assert friends_of(api, bob) == {"friends": ["alice"], "incoming": [], "outgoing": []}

    def test_the_addressee_declines(self, api: Api, alice: Player, bob: Player) -> None:
        request_id = ask(api.as_player(alice), username="bob").json()["id"]

        assert answer(api.as_player(bob), request_id, "decline").status_code == 204

        assert not Friendship.objects.exists()
        assert friends_of(api, alice) == {"friends": [], "incoming": [], "outgoing": []}
        # Declined is not blocked: alice may ask again.
        assert ask(api.as_player(alice), username="bob").status_code == 201

    def test_an_answer_other_than_accept_or_decline_is_400(self, api: Api, alice: Player, bob: Player) -> None:
        request_id = ask(api.as_player(alice), username="bob").json()["id"]
        assert_error(answer(api.as_player(bob), request_id, "maybe"), 400)
        assert Friendship.objects.get().status == "pending"

    def test_the_requester_withdraws_a_pending_request(self, api: Api, alice: Player, bob: Player) -> None:
        ask(api.as_player(alice), username="bob")
        assert remove(api.as_player(alice), bob).status_code == 204
        assert not Friendship.objects.exists()
        assert friends_of(api, bob)["incoming"] == []

    @pytest.mark.parametrize("who", ["requester", "addressee"])
    def test_either_friend_removes_the_friendship(self, api: Api, alice: Player, bob: Player, who: str) -> None:
        befriend(alice, bob)
        me, other = (alice, bob) if who == "requester" else (bob, alice)

        assert remove(api.as_player(me), other).status_code == 204

        assert not Friendship.objects.exists()
        assert friends_of(api, alice)["friends"] == []

    def test_removing_someone_who_is_not_a_friend_is_404(self, api: Api, alice: Player, bob: Player) -> None:
        assert_error(remove(api.as_player(alice), bob), 404)

    def test_a_reverse_request_accepts_the_pending_one(self, api: Api, alice: Player, bob: Player) -> None:
        ask(api.as_player(alice), username="bob")

        response = ask(api.as_player(bob), username="alice")

        assert response.status_code == 201, response.content
        assert response.json()["status"] == "accepted"
        assert Friendship.objects.count() == 1
        assert Friendship.objects.are_friends(alice, bob)

    def test_asking_twice_is_a_conflict(self, api: Api, alice: Player, bob: Player) -> None:
        ask(api.as_player(alice), username="bob")
        assert_error(ask(api.as_player(alice), player_id=str(bob.pk)), 409, "conflict")
        assert Friendship.objects.count() == 1

    @pytest.mark.parametrize("who", ["alice", "bob"])
    def test_asking_a_friend_is_a_conflict(self, api: Api, alice: Player, bob: Player, who: str) -> None:
        befriend(alice, bob)
        me, other = (alice, "bob") if who == "alice" else (bob, "alice")
        assert_error(ask(api.as_player(me), username=other), 409, "conflict")
        assert Friendship.objects.count() == 1

    def test_befriending_yourself_is_400(self, api: Api, alice: Player) -> None:
        error = assert_error(ask(api.as_player(alice), username="alice"), 400)
        assert "username" in error["fields"]
        assert not Friendship.objects.exists()

    def test_an_unknown_username_is_404(self, api: Api, alice: Player) -> None:
        assert_error(ask(api.as_player(alice), username="nobody-here"), 404)

    def test_an_unknown_player_id_is_404(self, api: Api, alice: Player) -> None:
        assert_error(ask(api.as_player(alice), player_id="00000000-0000-0000-0000-000000000000"), 404)

    @pytest.mark.parametrize("body", [{}, {"username": "bob", "player_id": "00000000-0000-0000-0000-000000000000"}])
    def test_exactly_one_of_username_or_player_id_is_required(
        self, api: Api, alice: Player, bob: Player, body: dict[str, Any]
    ) -> None:
        assert_error(post(api.as_player(alice), REQUESTS_URL, body), 400, "invalid")

    @pytest.mark.parametrize("verdict", ["accept", "decline"])
    def test_answering_someone_elses_request_is_404(
        self, api: Api, alice: Player, bob: Player, charlie: Player, verdict: str
    ) -> None:
        request_id = ask(api.as_player(alice), username="bob").json()["id"]

        assert_error(answer(api.as_player(charlie), request_id, verdict), 404)
        # Nor may the requester answer their own request.
        assert_error(answer(api.as_player(alice), request_id, verdict), 404)

        assert Friendship.objects.get().status == "pending"

    def test_accepting_an_accepted_request_again_is_404(self, api: Api, alice: Player, bob: Player) -> None:
        request_id = befriend(alice, bob).pk
        assert_error(answer(api.as_player(bob), request_id, "accept"), 404)

    def test_private_players_can_still_be_asked(self, api: Api, alice: Player, charlie: Player) -> None:
        assert ask(api.as_player(alice), username="charlie").status_code == 201


class TestWhoMayUseTheFriendsApi:
    def calls(self, client: APIClient, bob: Player) -> list[Response]:
        return [
            client.get(FRIENDS_URL),
            ask(client, username="bob"),
            answer(client, 1, "accept"),
            remove(client, bob),
        ]

    def test_anonymous_callers_get_401(self, api: Api, bob: Player) -> None:
        for response in self.calls(api.anonymous(), bob):
            assert_error(response, 401)
        assert not Friendship.objects.exists()

    def test_game_keys_get_403(self, api: Api, bob: Player, game_key: str) -> None:
        for response in self.calls(api.as_key(game_key), bob):
            assert_error(response, 403, "forbidden")
        assert not Friendship.objects.exists()


# --- The friends board --------------------------------------------------------------------


@pytest.fixture
def circle(alice: Player, bob: Player, charlie: Player, game: Game) -> dict[str, Player]:
    """alice's friends bob (25), dave (25, reached later), charlie (private, 60) and frank
    (no points); erin (50) is not a friend, gina only asked. alice has 10."""
    dave, erin = make_player("dave", region="eu"), make_player("erin", region="na")
    frank, gina = make_player("frank", privacy=Privacy.FRIENDS), make_player("gina")
    for friend in (bob, dave, charlie, frank):
        befriend(alice, friend)
    Friendship.objects.create(requester=gina, addressee=alice)
    start = timezone.now() - timedelta(hours=5)
    give(alice, achievement(game, "FIRST_FLIGHT"), at=start)
    give(bob, achievement(game, "ACE_PILOT"), at=start + timedelta(minutes=1))
    give(dave, achievement(game, "ACE_PILOT"), at=start + timedelta(minutes=2))
    give(charlie, achievement(game, "FIRST_FLIGHT"), at=start)
    give(charlie, achievement(game, "SECRET_ENDING"), at=start)
    give(erin, achievement(game, "SECRET_ENDING"), at=start)
    give(gina, achievement(game, "KILL_100"), at=start)
    return {"dave": dave, "erin": erin, "frank": frank, "gina": gina}


def friends_board(client: APIClient, game: Game, query: str = "") -> Response:
    return client.get(f"/api/v1/leaderboards/{game.pk}/friends{query}")


class TestFriendsBoard:
    def test_it_ranks_me_and_my_friends_only_with_shared_ranks_for_ties(
        self, api: Api, alice: Player, bob: Player, game: Game, circle: dict[str, Player]
    ) -> None:
        response = friends_board(api.as_player(alice), game)

        assert response.status_code == 200, response.content
        body = response.json()
        ranked = [(row["username"], row["points"], row["rank"]) for row in body["rankings"]]
        # charlie is a friend but private: ranked, with the name hidden.
        assert ranked == [("Anonymous player", 60, 1), ("bob", 25, 2), ("dave", 25, 2), ("alice", 10, 4)]
        assert body["total"] == 4
        assert body["rankings"][1]["player_id"] == str(bob.pk)

    def test_each_player_sees_their_own_circle(
        self, api: Api, bob: Player, game: Game, circle: dict[str, Player]
    ) -> None:
        body = friends_board(api.as_player(bob), game).json()
        assert [(row["username"], row["rank"]) for row in body["rankings"]] == [("bob", 1), ("alice", 2)]

    def test_it_narrows_to_a_region(self, api: Api, alice: Player, game: Game, circle: dict[str, Player]) -> None:
        body = friends_board(api.as_player(alice), game, "?region=eu").json()
        assert [(row["username"], row["rank"]) for row in body["rankings"]] == [
            ("Anonymous player", 1),
            ("dave", 2),
            ("alice", 3),
        ]

    def test_a_player_without_friends_sees_only_themself(self, api: Api, game: Game, circle: dict[str, Player]) -> None:
        body = friends_board(api.as_player(circle["erin"]), game).json()
        assert [(row["username"], row["rank"]) for row in body["rankings"]] == [("erin", 1)]

    def test_it_answers_by_slug_and_404s_an_unknown_game(
        self, api: Api, alice: Player, game: Game, circle: dict[str, Player]
    ) -> None:
        assert api.as_player(alice).get(f"/api/v1/leaderboards/{game.slug}/friends").json()["total"] == 4
        assert_error(api.as_player(alice).get("/api/v1/leaderboards/no-such-game/friends"), 404)

    def test_it_needs_a_player(self, api: Api, game: Game, game_key: str, circle: dict[str, Player]) -> None:
        assert_error(friends_board(api.anonymous(), game), 401)
        assert_error(friends_board(api.as_key(game_key), game), 403, "forbidden")


# --- Rival alerts -------------------------------------------------------------------------


def rival_alerts(player: Player) -> list[dict[str, Any]]:
    return list(Notification.objects.filter(player=player, kind="rival").values_list("payload", flat=True))


@pytest.fixture
def rivals(alice: Player, bob: Player, game: Game) -> None:
    """alice and bob are friends; alice has 10 points in Star Raiders, bob none."""
    befriend(bob, alice)
    give(alice, achievement(game, "FIRST_FLIGHT"))


class TestRivalAlerts:
    def test_a_friend_passing_me_leaves_me_an_alert(
        self,
        api: Api,
        alice: Player,
        bob: Player,
        game: Game,
        game_key: str,
        rivals: None,
        django_capture_on_commit_callbacks: Any,
    ) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            response = unlock(api.as_key(game_key), bob, achievement(game, "ACE_PILOT"))
        assert response.status_code == 201

        assert rival_alerts(alice) == [
            {
                "game_id": str(game.pk),
                "game_name": "Star Raiders",
                "game_slug": "star-raiders",
                "rival_id": str(bob.pk),
                "rival_username": "bob",
                "rival_points": 25,
                "your_points": 10,
            }
        ]
        assert rival_alerts(bob) == []

    def test_the_alert_shows_on_my_dashboard_page(
        self, alice: Player, bob: Player, game: Game, rivals: None, django_capture_on_commit_callbacks: Any
    ) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            give(bob, achievement(game, "ACE_PILOT"))
        client = Client()
        client.force_login(alice)

        page = client.get("/dashboard/").content.decode()

        assert "Friends' activity" in page  # the friends' feed shows the pass (docs/feed.md)
        assert re.search(r'<a href="/players/bob/">bob</a>\s+passed you in', page)
        assert "Star Raiders" in page and "(25 vs your 10)" in page

    def test_drawing_level_is_not_passing(
        self, alice: Player, bob: Player, game: Game, rivals: None, django_capture_on_commit_callbacks: Any
    ) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            give(bob, achievement(game, "FIRST_FLIGHT"))
        assert rival_alerts(alice) == []

        with django_capture_on_commit_callbacks(execute=True):
            give(bob, achievement(game, "KILL_100"))
        assert [alert["rival_points"] for alert in rival_alerts(alice)] == [25]

    def test_gaining_while_already_ahead_passes_nobody_again(
        self, alice: Player, bob: Player, game: Game, rivals: None, django_capture_on_commit_callbacks: Any
    ) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            give(bob, achievement(game, "ACE_PILOT"))
        with django_capture_on_commit_callbacks(execute=True):
            give(bob, achievement(game, "SECRET_ENDING"))
        assert len(rival_alerts(alice)) == 1

    def test_a_stranger_passing_me_leaves_no_alert(
        self, alice: Player, charlie: Player, game: Game, rivals: None, django_capture_on_commit_callbacks: Any
    ) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            give(charlie, achievement(game, "ACE_PILOT"))
        assert rival_alerts(alice) == []

    def test_a_pending_request_is_not_a_friendship(
        self, alice: Player, charlie: Player, game: Game, rivals: None, django_capture_on_commit_callbacks: Any
    ) -> None:
        Friendship.objects.create(requester=charlie, addressee=alice)
        with django_capture_on_commit_callbacks(execute=True):
            give(charlie, achievement(game, "ACE_PILOT"))
        assert rival_alerts(alice) == []

    def test_passing_in_another_game_is_not_passing_me(
        self, alice: Player, bob: Player, other_game: Game, rivals: None, django_capture_on_commit_callbacks: Any
    ) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            give(bob, achievement(other_game, "FIRST_ORE"))
        assert rival_alerts(alice) == []

    def test_a_player_hidden_by_moderation_passes_nobody(
        self, alice: Player, bob: Player, game: Game, rivals: None, django_capture_on_commit_callbacks: Any
    ) -> None:
        hide_player(player=bob, actor=None, reason="cheating")
        with django_capture_on_commit_callbacks(execute=True):
            give(bob, achievement(game, "ACE_PILOT"))
        assert rival_alerts(alice) == []

    def test_every_friend_passed_at_once_is_told(
        self, alice: Player, bob: Player, game: Game, rivals: None, django_capture_on_commit_callbacks: Any
    ) -> None:
        dave = make_player("dave")
        befriend(dave, bob)
        give(dave, achievement(game, "KILL_100"))  # 15
        with django_capture_on_commit_callbacks(execute=True):
            give(bob, achievement(game, "ACE_PILOT"))  # 0 -> 25, past alice (10) and dave (15)
        assert [a["your_points"] for a in rival_alerts(alice)] == [10]
        assert [a["your_points"] for a in rival_alerts(dave)] == [15]
