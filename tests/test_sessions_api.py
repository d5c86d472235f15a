"""POST /api/v1/sessions: game servers and clients report play sessions; playtime is
counted once per session id, implausible sessions are refused, and only the right callers
may report."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIClient

from stats.models import PlayerGameStats, PlaySession
from tests.conftest import Api
from tests.helpers import assert_error, post
from tracker.models import Game, Player

SESSIONS_URL = "/api/v1/sessions"


def report(client: APIClient, player: Player, **body: Any) -> Response:
    """POST a session for `player`; datetimes in `body` are sent as ISO 8601."""
    body = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in body.items()}
    return post(client, SESSIONS_URL, {"player_id": str(player.pk), **body})


def playtime(player: Player, game: Game) -> int | None:
    row = PlayerGameStats.objects.filter(player=player, game=game).first()
    return row.playtime_seconds if row else None


def activity(player: Player, game: Game) -> tuple[datetime | None, datetime | None]:
    row = PlayerGameStats.objects.get(player=player, game=game)
    return row.first_activity, row.last_activity


def hours_ago(hours: int = 3) -> datetime:
    return (timezone.now() - timedelta(hours=hours)).replace(microsecond=0)


def registered_a_year_ago(game: Game) -> Game:
    """The sessions these tests report, days back, lie in the game's lifetime."""
    Game.objects.filter(pk=game.pk).update(created=game.created - timedelta(days=365))
    game.refresh_from_db()
    return game


@pytest.fixture
def game(game: Game) -> Game:
    return registered_a_year_ago(game)


@pytest.fixture
def other_game(other_game: Game) -> Game:
    return registered_a_year_ago(other_game)


class TestRecording:
    def test_it_records_a_session_given_its_start_and_end(
        self, api: Api, game: Game, game_key: str, alice: Player
    ) -> None:
        start = hours_ago()
        response = report(
            api.as_key(game_key), alice, session_id="s-1", started_at=start, ended_at=start + timedelta(minutes=90)
        )
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["session_id"] == "s-1"
        assert body["player_id"] == str(alice.pk)
        assert body["game_id"] == str(game.pk)
        assert body["duration_seconds"] == 5400
        assert body["already_recorded"] is False
        assert datetime.fromisoformat(body["started_at"]) == start
        assert datetime.fromisoformat(body["ended_at"]) == start + timedelta(minutes=90)
        assert playtime(alice, game) == 5400
        session = PlaySession.objects.get()
        assert (session.player, session.game, session.source) == (alice, game, "server")

    def test_it_records_a_session_given_only_its_duration_ending_now(
        self, api: Api, game: Game, game_key: str, alice: Player
    ) -> None:
        before = timezone.now()
        response = report(api.as_key(game_key), alice, session_id="s-1", duration_seconds=1800)
        after = timezone.now()
        assert response.status_code == 201, response.content
        session = PlaySession.objects.get()
        assert before - timedelta(seconds=1) <= session.ended_at <= after
        assert session.ended_at - session.started_at == timedelta(seconds=1800)
        assert playtime(alice, game) == 1800

    def test_a_duration_with_an_end_time_ends_then(self, api: Api, game: Game, game_key: str, alice: Player) -> None:
        end = hours_ago()
        response = report(api.as_key(game_key), alice, session_id="s-1", duration_seconds=600, ended_at=end)
        assert response.status_code == 201, response.content
        session = PlaySession.objects.get()
        assert (session.started_at, session.ended_at) == (end - timedelta(seconds=600), end)

    def test_a_start_time_with_a_duration_is_honoured(self, api: Api, game: Game, game_key: str, alice: Player) -> None:
        start = hours_ago(48)
        response = report(api.as_key(game_key), alice, session_id="s-1", started_at=start, duration_seconds=600)
        assert response.status_code == 201, response.content
        session = PlaySession.objects.get()
        assert (session.started_at, session.ended_at) == (start, start + timedelta(seconds=600))

    def test_a_repeated_session_id_is_acknowledged_and_counted_once(
        self, api: Api, game: Game, game_key: str, alice: Player
    ) -> None:
        start = hours_ago()
        client = api.as_key(game_key)
        first = report(client, alice, session_id="s-1", started_at=start, ended_at=start + timedelta(minutes=30))
        again = report(client, alice, session_id="s-1", started_at=start, ended_at=start + timedelta(minutes=50))
        assert first.status_code == 201
        assert again.status_code == 200, again.content
        assert again.json()["already_recorded"] is True
        # The answer describes the session as first recorded, not the repeat's numbers.
        assert again.json()["duration_seconds"] == 1800
        assert PlaySession.objects.count() == 1
        assert playtime(alice, game) == 1800

    def test_different_sessions_add_up(self, api: Api, game: Game, game_key: str, alice: Player) -> None:
        client = api.as_key(game_key)
        start = hours_ago()
        first = report(client, alice, session_id="s-1", started_at=start, duration_seconds=1000)
        then = start + timedelta(seconds=1000)  # starts as the first one ends: no overlap
        second = report(client, alice, session_id="s-2", started_at=then, duration_seconds=2000)
        assert (first.status_code, second.status_code) == (201, 201)
        assert playtime(alice, game) == 3000

    def test_a_session_overlapping_another_is_refused_and_counts_nothing(
        self, api: Api, game: Game, game_key: str, alice: Player
    ) -> None:
        client, start = api.as_key(game_key), hours_ago()
        assert report(client, alice, session_id="s-1", started_at=start, duration_seconds=3600).status_code == 201
        inside = report(client, alice, session_id="s-2", started_at=start + timedelta(minutes=10), duration_seconds=60)
        assert_error(inside, 409, "conflict")
        around = report(
            client, alice, session_id="s-3", started_at=start - timedelta(hours=1), duration_seconds=3 * 3600
        )
        assert_error(around, 409, "conflict")
        assert playtime(alice, game) == 3600
        assert PlaySession.objects.count() == 1

    def test_ten_copies_of_a_day_count_one_day(self, api: Api, game: Game, game_key: str, alice: Player) -> None:
        client, start = api.as_key(game_key), hours_ago() - timedelta(days=2)
        answers = [
            report(client, alice, session_id=f"day-{i}", started_at=start, duration_seconds=24 * 3600).status_code
            for i in range(10)
        ]
        assert answers == [201] + [409] * 9
        assert playtime(alice, game) == 24 * 3600

    def test_the_same_times_in_another_game_or_for_another_player_are_their_own(
        self, api: Api, game: Game, game_key: str, alice: Player, bob: Player
    ) -> None:
        client, start = api.as_key(game_key), hours_ago()
        assert report(client, alice, session_id="s-1", started_at=start, duration_seconds=600).status_code == 201
        assert report(client, bob, session_id="s-1", started_at=start, duration_seconds=600).status_code == 201

    def test_the_same_session_id_is_independent_per_player(
        self, api: Api, game: Game, game_key: str, alice: Player, bob: Player
    ) -> None:
        client = api.as_key(game_key)
        assert report(client, alice, session_id="s-1", duration_seconds=1000).status_code == 201
        assert report(client, bob, session_id="s-1", duration_seconds=2000).status_code == 201
        assert (playtime(alice, game), playtime(bob, game)) == (1000, 2000)

    def test_a_session_does_not_give_points(self, api: Api, game: Game, game_key: str, alice: Player) -> None:
        report(api.as_key(game_key), alice, session_id="s-1", duration_seconds=1000)
        row = PlayerGameStats.objects.get(player=alice, game=game)
        assert (row.points, row.achievement_count, row.completion) == (0, 0, 0.0)


class TestActivityTimes:
    def test_the_first_session_sets_first_and_last_activity(
        self, api: Api, game: Game, game_key: str, alice: Player
    ) -> None:
        start = hours_ago() - timedelta(days=2)
        report(api.as_key(game_key), alice, session_id="s-1", started_at=start, ended_at=start + timedelta(hours=1))
        assert activity(alice, game) == (start, start + timedelta(hours=1))

    def test_a_later_session_moves_last_activity_forward(
        self, api: Api, game: Game, game_key: str, alice: Player
    ) -> None:
        start = hours_ago() - timedelta(days=2)
        client = api.as_key(game_key)
        report(client, alice, session_id="s-1", started_at=start, ended_at=start + timedelta(hours=1))
        later = start + timedelta(days=1)
        report(client, alice, session_id="s-2", started_at=later, ended_at=later + timedelta(hours=2))
        assert activity(alice, game) == (start, later + timedelta(hours=2))

    def test_an_older_session_moves_first_activity_back_but_not_last_activity(
        self, api: Api, game: Game, game_key: str, alice: Player
    ) -> None:
        start = hours_ago() - timedelta(days=1)
        client = api.as_key(game_key)
        report(client, alice, session_id="new", started_at=start, ended_at=start + timedelta(hours=1))
        older = start - timedelta(days=3)
        report(client, alice, session_id="old", started_at=older, ended_at=older + timedelta(hours=1))
        assert activity(alice, game) == (older, start + timedelta(hours=1))
        assert playtime(alice, game) == 7200


class TestRefusals:
    @pytest.mark.parametrize(
        ("extra", "field"),
        [
            ({"duration_seconds": 0}, "duration_seconds"),
            ({"duration_seconds": -60}, "duration_seconds"),
            ({"duration_seconds": 24 * 3600 + 1}, "duration_seconds"),
            ({"duration_seconds": "an hour"}, "duration_seconds"),
            ({}, "duration_seconds"),
            ({"session_id": "has spaces in it"}, "session_id"),
        ],
        ids=["zero", "negative", "over-24h", "not-a-number", "no-duration-nor-span", "bad-session-id"],
    )
    def test_an_implausible_duration_is_refused_and_nothing_written(
        self, api: Api, game: Game, game_key: str, alice: Player, extra: dict[str, Any], field: str
    ) -> None:
        body = {"session_id": "s-1", **extra}
        error = assert_error(report(api.as_key(game_key), alice, **body), 400, "invalid")
        assert field in error["fields"], error
        assert not PlaySession.objects.exists()
        assert playtime(alice, game) is None

    @pytest.mark.parametrize("minutes", [0, -30], ids=["ending-as-it-starts", "ending-before-it-starts"])
    def test_a_session_must_end_after_it_starts(
        self, api: Api, game: Game, game_key: str, alice: Player, minutes: int
    ) -> None:
        start = hours_ago()
        response = report(
            api.as_key(game_key), alice, session_id="s-1", started_at=start, ended_at=start + timedelta(minutes=minutes)
        )
        error = assert_error(response, 400, "invalid")
        assert error["fields"] == {"ended_at": ["Must be after started_at."]}
        assert not PlaySession.objects.exists()

    def test_a_span_longer_than_a_day_is_refused(self, api: Api, game: Game, game_key: str, alice: Player) -> None:
        start = hours_ago() - timedelta(days=3)
        response = report(
            api.as_key(game_key), alice, session_id="s-1", started_at=start, ended_at=start + timedelta(hours=25)
        )
        assert_error(response, 400)
        assert not PlaySession.objects.exists()
        assert playtime(alice, game) is None

    def test_a_span_of_exactly_a_day_is_accepted(self, api: Api, game: Game, game_key: str, alice: Player) -> None:
        start = hours_ago() - timedelta(days=3)
        response = report(
            api.as_key(game_key), alice, session_id="s-1", started_at=start, ended_at=start + timedelta(hours=24)
        )
        assert response.status_code == 201, response.content
        assert playtime(alice, game) == 24 * 3600

    @pytest.mark.parametrize("length", [timedelta(minutes=-30), timedelta(0)], ids=["ends-before-start", "empty"])
    def test_a_session_that_does_not_end_after_it_starts_is_refused(
        self, api: Api, game: Game, game_key: str, alice: Player, length: timedelta
    ) -> None:
        start = hours_ago()
        response = report(api.as_key(game_key), alice, session_id="s-1", started_at=start, ended_at=start + length)
        error = assert_error(response, 400, "invalid")
        assert "ended_at" in error["fields"]
        assert not PlaySession.objects.exists()
        assert playtime(alice, game) is None

    @pytest.mark.parametrize("which", ["ended_at", "started_at"])
    def test_a_session_in_the_future_is_refused(
        self, api: Api, game: Game, game_key: str, alice: Player, which: str
    ) -> None:
        soon = timezone.now() + timedelta(hours=2)
        times = {"started_at": hours_ago(1), "ended_at": soon}
        if which == "started_at":
            times = {"started_at": soon, "ended_at": soon + timedelta(minutes=30)}
        error = assert_error(report(api.as_key(game_key), alice, session_id="s-1", **times), 400, "invalid")
        assert which in error["fields"], error
        assert not PlaySession.objects.exists()

    def test_a_duration_ending_in_the_future_is_refused(
        self, api: Api, game: Game, game_key: str, alice: Player
    ) -> None:
        response = report(
            api.as_key(game_key),
            alice,
            session_id="s-1",
            duration_seconds=60,
            ended_at=timezone.now() + timedelta(hours=1),
        )
        assert_error(response, 400)
        assert not PlaySession.objects.exists()

    def test_an_unknown_player_is_404(self, api: Api, game: Game, game_key: str, alice: Player) -> None:
        response = post(
            api.as_key(game_key),
            SESSIONS_URL,
            {"player_id": "00000000-0000-0000-0000-000000000000", "session_id": "s", "duration_seconds": 5},
        )
        assert_error(response, 404)
        assert not PlaySession.objects.exists()


class TestWhoMayReport:
    def test_a_game_key_may_not_report_for_another_game(
        self, api: Api, game: Game, other_game_key: str, alice: Player
    ) -> None:
        response = report(
            api.as_key(other_game_key), alice, game_id=str(game.pk), session_id="s-1", duration_seconds=60
        )
        assert_error(response, 403, "forbidden")
        assert not PlaySession.objects.exists()
        assert playtime(alice, game) is None

    def test_a_game_key_may_name_its_own_game(self, api: Api, game: Game, game_key: str, alice: Player) -> None:
        response = report(api.as_key(game_key), alice, game_id=game.slug, session_id="s-1", duration_seconds=60)
        assert response.status_code == 201, response.content
        assert playtime(alice, game) == 60

    def test_a_player_reports_its_own_session_naming_the_game(self, api: Api, game: Game, alice: Player) -> None:
        response = report(api.as_player(alice), alice, game_id=str(game.pk), session_id="c-1", duration_seconds=120)
        assert response.status_code == 201, response.content
        assert PlaySession.objects.get().source == "client"
        assert playtime(alice, game) == 120

    def test_a_player_token_must_name_the_game(self, api: Api, game: Game, alice: Player) -> None:
        error = assert_error(report(api.as_player(alice), alice, session_id="c-1", duration_seconds=120), 400)
        assert "game_id" in error["fields"]
        assert not PlaySession.objects.exists()

    def test_a_player_may_not_report_for_another_player(self, api: Api, game: Game, alice: Player, bob: Player) -> None:
        response = report(api.as_player(alice), bob, game_id=str(game.pk), session_id="c-1", duration_seconds=120)
        assert_error(response, 403, "forbidden")
        assert not PlaySession.objects.exists()
        assert playtime(bob, game) is None

    def test_an_anonymous_caller_is_401(self, api: Api, game: Game, alice: Player) -> None:
        response = report(api.anonymous(), alice, game_id=str(game.pk), session_id="c-1", duration_seconds=120)
        assert_error(response, 401)
        assert not PlaySession.objects.exists()

    def test_an_unknown_game_is_404(self, api: Api, game: Game, alice: Player) -> None:
        response = report(api.as_player(alice), alice, game_id="no-such-game", session_id="c-1", duration_seconds=1)
        assert_error(response, 404)
