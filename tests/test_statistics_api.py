"""A player's numbers over the API: GET /api/v1/players/{id}/statistics, /dashboard and
/history, with figures known by construction, and the privacy setting respected by all
of them (and by /achievements)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIClient

from achievements.services import import_manifest
from players.snapshots import take_snapshots
from stats.services import record_play_session
from tests.conftest import Api, achievement, make_player
from tests.helpers import assert_error, give, manifest
from tracker.models import Friendship, Game, Player, Privacy
from tracker.services import game_key_create


def play(player: Player, game: Game, seconds: int, *, ended_at: datetime, session_id: str = "") -> None:
    """A play session of `seconds` ending at `ended_at`, recorded as a game server would."""
    record_play_session(
        player=player,
        game=game,
        session_id=session_id or f"s-{ended_at.timestamp():.0f}",
        started_at=ended_at - timedelta(seconds=seconds),
        ended_at=ended_at,
        source="server",
    )


def get(client: APIClient, player: Player, what: str, query: str = "") -> Response:
    return client.get(f"/api/v1/players/{player.pk}/{what}{query}")


def ok(response: Response) -> dict[str, Any]:
    assert response.status_code == 200, response.content
    return response.json()


def by_game(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["game_slug"]: row for row in body["games"]}


def noon(day: date, *, hour: int = 12) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


@pytest.fixture
def alice_played(alice: Player, game: Game, other_game: Game) -> datetime:
    """alice: 2 of Star Raiders' 4 achievements (35 points) and 1.5 h there; Moon Miners'
    only achievement (5 points) and half an hour there. Returns the time of her last unlock."""
    now = timezone.now().replace(microsecond=0)
    give(alice, achievement(game, "FIRST_FLIGHT"), at=now - timedelta(hours=5))
    give(alice, achievement(game, "ACE_PILOT"), at=now - timedelta(hours=4))
    play(alice, game, 5400, ended_at=now - timedelta(hours=3))
    give(alice, achievement(other_game, "FIRST_ORE"), at=now - timedelta(hours=2))
    play(alice, other_game, 1800, ended_at=now - timedelta(hours=1))
    return now - timedelta(hours=2)


# --- Statistics ---------------------------------------------------------------------------


class TestStatistics:
    def test_it_lists_each_game_with_playtime_in_hours_achievements_and_completion(
        self, api: Api, alice: Player, game: Game, other_game: Game, alice_played: datetime
    ) -> None:
        games = by_game(ok(get(api.as_player(alice), alice, "statistics")))

        assert set(games) == {"star-raiders", "moon-miners"}
        raiders = games["star-raiders"]
        assert raiders["game_id"] == str(game.pk)
        assert raiders["game_name"] == "Star Raiders"
        assert raiders["playtime"] == 1.5
        assert raiders["achievements"] == 2
        assert raiders["total_achievements"] == 4
        assert raiders["completion"] == 50.0
        assert raiders["points"] == 35
        miners = games["moon-miners"]
        assert (miners["game_id"], miners["playtime"], miners["achievements"], miners["completion"]) == (
            str(other_game.pk),
            0.5,
            1,
            100.0,
        )

    def test_the_most_recently_played_game_comes_first(self, api: Api, alice: Player, alice_played: datetime) -> None:
        body = ok(get(api.as_player(alice), alice, "statistics"))
        assert [row["game_slug"] for row in body["games"]] == ["moon-miners", "star-raiders"]
        assert datetime.fromisoformat(body["games"][0]["last_played"]) > datetime.fromisoformat(
            body["games"][1]["last_played"]
        )

    def test_completion_counts_hidden_achievements_in_the_whole(self, api: Api, alice: Player, game: Game) -> None:
        give(alice, achievement(game, "SECRET_ENDING"))
        [row] = ok(get(api.anonymous(), alice, "statistics"))["games"]
        assert (row["achievements"], row["completion"], row["points"]) == (1, 25.0, 50)

    def test_a_game_played_without_unlocks_is_listed_with_zero_completion(
        self, api: Api, bob: Player, game: Game
    ) -> None:
        play(bob, game, 900, ended_at=timezone.now() - timedelta(minutes=5))
        [row] = ok(get(api.anonymous(), bob, "statistics"))["games"]
        assert (row["playtime"], row["achievements"], row["completion"], row["points"]) == (0.25, 0, 0.0, 0)

    def test_a_player_with_no_activity_has_no_games(self, api: Api, bob: Player) -> None:
        assert ok(get(api.anonymous(), bob, "statistics")) == {"games": []}

    @pytest.mark.parametrize("ref", ["slug", "id"])
    def test_it_filters_to_one_game(
        self, api: Api, alice: Player, other_game: Game, alice_played: datetime, ref: str
    ) -> None:
        value = other_game.slug if ref == "slug" else str(other_game.pk)
        body = ok(get(api.anonymous(), alice, "statistics", f"?game={value}"))
        assert [row["game_slug"] for row in body["games"]] == ["moon-miners"]

    def test_an_unknown_game_filter_is_404(self, api: Api, alice: Player, alice_played: datetime) -> None:
        assert_error(get(api.anonymous(), alice, "statistics", "?game=nope"), 404)

    def test_an_unknown_player_is_404(self, api: Api, db: Any) -> None:
        response = api.anonymous().get("/api/v1/players/00000000-0000-0000-0000-000000000000/statistics")
        assert_error(response, 404)


# --- Dashboard ----------------------------------------------------------------------------


class TestDashboard:
    def test_it_totals_every_game(self, api: Api, alice: Player, alice_played: datetime) -> None:
        body = ok(get(api.as_player(alice), alice, "dashboard"))

        assert body["total_achievements"] == 3
        assert body["total_points"] == 40
        assert body["total_playtime"] == 2.0
        assert body["games_owned"] == 2
        assert body["average_completion"] == 75.0  # (50 + 100) / 2

    def test_recent_achievements_are_newest_first_with_their_game_and_time(
        self, api: Api, alice: Player, alice_played: datetime
    ) -> None:
        recent = ok(get(api.anonymous(), alice, "dashboard"))["recent_achievements"]

        assert [a["api_name"] for a in recent] == ["FIRST_ORE", "ACE_PILOT", "FIRST_FLIGHT"]
        assert recent[0]["game_name"] == "Moon Miners"
        assert recent[0]["points"] == 5
        assert datetime.fromisoformat(recent[0]["unlocked_at"]) == alice_played

    def test_recent_achievements_stop_at_ten(self, api: Api, alice: Player) -> None:
        big = import_manifest(manifest=manifest("big-game", 12)).game
        start = timezone.now() - timedelta(days=1)
        for i, each in enumerate(big.achievements.order_by("api_name")):
            give(alice, each, at=start + timedelta(minutes=i))
        recent = ok(get(api.anonymous(), alice, "dashboard"))["recent_achievements"]
        assert [a["api_name"] for a in recent] == [f"A{i:02d}" for i in range(11, 1, -1)]

    def test_a_game_only_played_counts_as_owned_and_lowers_the_average(
        self, api: Api, alice: Player, game: Game, other_game: Game
    ) -> None:
        give(alice, achievement(other_game, "FIRST_ORE"))
        play(alice, game, 3600, ended_at=timezone.now() - timedelta(minutes=1))
        body = ok(get(api.anonymous(), alice, "dashboard"))
        assert (body["games_owned"], body["average_completion"], body["total_playtime"]) == (2, 50.0, 1.0)

    def test_a_player_with_nothing_yet_has_zeros(self, api: Api, bob: Player) -> None:
        body = ok(get(api.anonymous(), bob, "dashboard"))
        assert body["total_achievements"] == 0
        assert body["total_playtime"] == 0
        assert body["games_owned"] == 0
        assert body["average_completion"] == 0
        assert body["recent_achievements"] == []


# --- History ------------------------------------------------------------------------------


@pytest.fixture
def first_day() -> date:
    return timezone.now().date() - timedelta(days=10)


@pytest.fixture
def alice_history(alice: Player, game: Game, other_game: Game, first_day: date) -> date:
    """Day 1: First Flight (10). Day 3: Ace Pilot (25), 1.5 h of play, and in Moon Miners
    First Ore (5). Snapshots taken for days 1 to 5. Returns day 1."""
    day1, day3 = first_day, first_day + timedelta(days=2)
    give(alice, achievement(game, "FIRST_FLIGHT"), at=noon(day1))
    give(alice, achievement(game, "ACE_PILOT"), at=noon(day3, hour=9))
    play(alice, game, 5400, ended_at=noon(day3, hour=11))
    give(alice, achievement(other_game, "FIRST_ORE"), at=noon(day3, hour=15))
    for offset in range(5):
        take_snapshots(first_day + timedelta(days=offset))
    return first_day


def history(client: APIClient, player: Player, start: date, end: date, extra: str = "") -> Response:
    return get(client, player, "history", f"?start={start.isoformat()}&end={end.isoformat()}{extra}")


class TestHistory:
    def test_each_day_has_end_of_day_totals_and_what_it_added(
        self, api: Api, alice: Player, alice_history: date
    ) -> None:
        day0 = alice_history - timedelta(days=1)
        body = ok(history(api.as_player(alice), alice, day0, day0 + timedelta(days=5)))

        assert body["game_id"] is None
        rows = [(d["date"], d["points"], d["achievements"], d["points_gained"], d["unlocks"]) for d in body["days"]]
        dates = [(day0 + timedelta(days=n)).isoformat() for n in range(6)]
        assert rows == [
            (dates[0], 0, 0, 0, 0),  # before anything happened
            (dates[1], 10, 1, 10, 1),
            (dates[2], 10, 1, 0, 0),  # no snapshot: carried forward, nothing gained
            (dates[3], 40, 3, 30, 2),
            (dates[4], 40, 3, 0, 0),
            (dates[5], 40, 3, 0, 0),
        ]
        assert [(d["playtime"], d["playtime_gained"]) for d in body["days"]][2:5] == [
            (0.0, 0.0),
            (1.5, 1.5),
            (1.5, 0.0),
        ]

    def test_a_range_starting_after_activity_carries_the_earlier_totals_in(
        self, api: Api, alice: Player, alice_history: date
    ) -> None:
        day2 = alice_history + timedelta(days=1)
        [only] = ok(history(api.anonymous(), alice, day2, day2))["days"]
        assert (only["points"], only["achievements"], only["points_gained"], only["unlocks"]) == (10, 1, 0, 0)

    def test_it_follows_one_game(self, api: Api, alice: Player, game: Game, alice_history: date) -> None:
        day3 = alice_history + timedelta(days=2)
        body = ok(history(api.anonymous(), alice, day3, day3, f"&game={game.slug}"))
        assert body["game_id"] == str(game.pk)
        [row] = body["days"]
        assert (row["points"], row["achievements"], row["points_gained"], row["unlocks"]) == (35, 2, 25, 1)

    def test_it_defaults_to_the_last_thirty_days(self, api: Api, alice: Player, alice_history: date) -> None:
        days = ok(get(api.anonymous(), alice, "history"))["days"]
        today = timezone.now().date()
        assert len(days) == 30
        assert (days[0]["date"], days[-1]["date"]) == ((today - timedelta(days=29)).isoformat(), today.isoformat())
        assert days[-1]["points"] == 40

    def test_a_range_of_366_days_is_allowed(self, api: Api, alice: Player, alice_history: date) -> None:
        end = timezone.now().date()
        days = ok(history(api.anonymous(), alice, end - timedelta(days=365), end))["days"]
        assert len(days) == 366
        assert days[-1]["points"] == 40

    def test_a_longer_range_is_400(self, api: Api, alice: Player) -> None:
        end = timezone.now().date()
        error = assert_error(history(api.anonymous(), alice, end - timedelta(days=366), end), 400, "invalid")
        assert "start" in error["fields"]

    def test_a_start_after_the_end_is_400(self, api: Api, alice: Player) -> None:
        end = timezone.now().date()
        error = assert_error(history(api.anonymous(), alice, end, end - timedelta(days=1)), 400, "invalid")
        assert "start" in error["fields"]

    def test_a_malformed_date_is_400(self, api: Api, alice: Player) -> None:
        assert_error(get(api.anonymous(), alice, "history", "?start=yesterday"), 400, "invalid")


# --- Privacy ------------------------------------------------------------------------------

ENDPOINTS = ["statistics", "dashboard", "history", "achievements"]
VISIBLE = {
    # privacy -> viewers who may see
    Privacy.PUBLIC: {"owner", "friend", "stranger", "anonymous"},
    Privacy.FRIENDS: {"owner", "friend"},
    Privacy.PRIVATE: {"owner"},
}


@pytest.fixture
def dana(db: Any, game: Game, other_game: Game) -> Player:
    """The subject: a player with activity in both games, friends with alice."""
    dana = make_player("dana", region="oce")
    give(dana, achievement(game, "FIRST_FLIGHT"))
    give(dana, achievement(other_game, "FIRST_ORE"))
    take_snapshots(timezone.now().date())
    return dana


def viewer_client(api: Api, viewer: str, dana: Player, alice: Player, bob: Player) -> APIClient:
    Friendship.objects.create(requester=dana, addressee=alice, status=Friendship.Status.ACCEPTED)
    return {
        "owner": lambda: api.as_player(dana),
        "friend": lambda: api.as_player(alice),
        "stranger": lambda: api.as_player(bob),
        "anonymous": api.anonymous,
    }[viewer]()


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("privacy", [Privacy.PUBLIC, Privacy.FRIENDS, Privacy.PRIVATE])
@pytest.mark.parametrize("viewer", ["owner", "friend", "stranger", "anonymous"])
def test_each_endpoint_respects_the_players_privacy(
    api: Api, dana: Player, alice: Player, bob: Player, endpoint: str, privacy: str, viewer: str
) -> None:
    dana.privacy = privacy
    dana.save(update_fields=["privacy"])
    client = viewer_client(api, viewer, dana, alice, bob)

    response = get(client, dana, endpoint)

    if viewer in VISIBLE[privacy]:
        body = ok(response)
        seen = {
            "statistics": lambda: len(body["games"]),
            "dashboard": lambda: body["total_achievements"],
            "history": lambda: body["days"][-1]["achievements"],
            "achievements": lambda: body["total"],
        }[endpoint]()
        assert seen == 2
    else:
        error = assert_error(response, 403, "forbidden")
        assert "dana" not in str(response.content) and "FIRST_ORE" not in str(response.content)
        assert error["message"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_pending_friend_request_does_not_open_a_friends_only_profile(
    api: Api, dana: Player, charlie: Player, endpoint: str
) -> None:
    dana.privacy = Privacy.FRIENDS
    dana.save(update_fields=["privacy"])
    Friendship.objects.create(requester=charlie, addressee=dana)
    assert_error(get(api.as_player(charlie), dana, endpoint), 403)


class TestGameKeys:
    @pytest.fixture
    def hidden_dana(self, dana: Player) -> Player:
        dana.privacy = Privacy.PRIVATE
        dana.save(update_fields=["privacy"])
        return dana

    def test_a_game_key_sees_a_private_players_statistics_for_its_own_game_only(
        self, api: Api, hidden_dana: Player, game: Game, game_key: str
    ) -> None:
        body = ok(get(api.as_key(game_key), hidden_dana, "statistics"))
        assert [row["game_id"] for row in body["games"]] == [str(game.pk)]

    def test_a_game_key_sees_a_private_players_dashboard_for_its_own_game_only(
        self, api: Api, hidden_dana: Player, game: Game, game_key: str
    ) -> None:
        body = ok(get(api.as_key(game_key), hidden_dana, "dashboard"))
        assert (body["total_achievements"], body["games_owned"], body["total_points"]) == (1, 1, 10)
        assert [a["api_name"] for a in body["recent_achievements"]] == ["FIRST_FLIGHT"]

    def test_a_game_key_sees_a_private_players_history_for_its_own_game_only(
        self, api: Api, hidden_dana: Player, game: Game, game_key: str
    ) -> None:
        body = ok(get(api.as_key(game_key), hidden_dana, "history"))
        assert body["game_id"] == str(game.pk)
        assert body["days"][-1]["points"] == 10

    def test_a_game_key_sees_a_private_players_unlocks_in_its_own_game_only(
        self, api: Api, hidden_dana: Player, game_key: str
    ) -> None:
        body = ok(get(api.as_key(game_key), hidden_dana, "achievements"))
        assert [a["api_name"] for a in body["achievements"]] == ["FIRST_FLIGHT"]

    @pytest.mark.parametrize("endpoint", ["statistics", "history", "achievements"])
    def test_a_game_key_cannot_ask_about_another_game_of_a_private_player(
        self, api: Api, hidden_dana: Player, other_game: Game, game_key: str, endpoint: str
    ) -> None:
        response = get(api.as_key(game_key), hidden_dana, endpoint, f"?game={other_game.slug}")
        assert_error(response, 403, "forbidden")

    def test_a_friends_only_player_is_also_limited_to_the_keys_game(
        self, api: Api, dana: Player, other_game: Game
    ) -> None:
        dana.privacy = Privacy.FRIENDS
        dana.save(update_fields=["privacy"])
        key = game_key_create(game=other_game)
        body = ok(get(api.as_key(key), dana, "statistics"))
        assert [row["game_slug"] for row in body["games"]] == ["moon-miners"]

    def test_a_game_key_sees_every_game_of_a_public_player(self, api: Api, dana: Player, game_key: str) -> None:
        body = ok(get(api.as_key(game_key), dana, "statistics"))
        assert {row["game_slug"] for row in body["games"]} == {"star-raiders", "moon-miners"}
        assert ok(get(api.as_key(game_key), dana, "dashboard"))["games_owned"] == 2
