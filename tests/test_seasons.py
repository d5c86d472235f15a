"""Seasons: which unlocks count (window, region, chosen achievements), live standings over the
API, and closing on time into an archive that nothing changes afterwards."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.response import Response

from achievements.models import Achievement, Unlock
from achievements.services import revoke_unlock, save_season
from infra.errors import Conflict, Invalid
from leaderboards import tasks
from leaderboards.models import ModerationAction, Season, SeasonResult, SeasonStanding
from leaderboards.services import CLOSE_GRACE, close_due_seasons, close_season
from tests.conftest import Api, achievement, make_player
from tests.helpers import assert_error, give, stats
from tracker.models import Game, Player

SECOND = timedelta(seconds=1)
HOUR = timedelta(hours=1)


def season_on(
    game: Game,
    *,
    starts_at: datetime,
    ends_at: datetime,
    name: str = "Spring Cup",
    region: str = "",
    achievements: Iterable[Achievement] = (),
) -> Season:
    return save_season(
        game=game, name=name, starts_at=starts_at, ends_at=ends_at, region=region, achievements=achievements
    )


def running_season(game: Game, **extra: Any) -> Season:
    """A season that started a day ago and ends in a day (times on whole seconds)."""
    now = timezone.now().replace(microsecond=0)
    return season_on(game, starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1), **extra)


def ended_season(game: Game, *, ended_ago: timedelta = HOUR, **extra: Any) -> Season:
    now = timezone.now().replace(microsecond=0)
    return season_on(game, starts_at=now - timedelta(days=7), ends_at=now - ended_ago, **extra)


def standings(api: Api, season: Season, query: str = "") -> Response:
    return api.anonymous().get(f"/api/v1/seasons/{season.pk}/standings{query}")


def board(response: Response) -> list[tuple[str, int, int]]:
    """(username, points, rank) rows of a board response, in board order."""
    assert response.status_code == 200, response.content
    return [(row["username"], row["points"], row["rank"]) for row in response.json()["rankings"]]


def season_standing(api: Api, season: Season, player: Player, query: str = "") -> Response:
    return api.anonymous().get(f"/api/v1/seasons/{season.pk}/player/{player.pk}{query}")


def archive(season: Season) -> list[tuple[str, int, int, int]]:
    """(username, rank, points, position) of a season's archived results, in board order."""
    rows = SeasonResult.objects.filter(season=season).order_by("position")
    return list(rows.values_list("player__username", "rank", "points", "position"))


@pytest.fixture
def dana(db: Any) -> Player:
    return make_player("dana", region="na")


@pytest.fixture
def contested(game: Game, alice: Player, bob: Player, dana: Player) -> Season:
    """A running season: alice 35 points, then bob and dana tied on 25 (bob got there first)."""
    season = running_season(game)
    start = season.starts_at
    give(alice, achievement(game, "FIRST_FLIGHT"), at=start + HOUR)
    give(alice, achievement(game, "ACE_PILOT"), at=start + HOUR)
    give(bob, achievement(game, "ACE_PILOT"), at=start + 2 * HOUR)
    give(dana, achievement(game, "ACE_PILOT"), at=start + 3 * HOUR)
    return season


# --- What counts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edge", "offset", "counts"),
    [
        pytest.param("starts_at", -SECOND, False, id="a second before the start"),
        pytest.param("starts_at", timedelta(0), True, id="exactly at the start"),
        pytest.param("ends_at", -SECOND, True, id="a second before the end"),
        pytest.param("ends_at", -timedelta(microseconds=1), True, id="a microsecond before the end"),
        pytest.param("ends_at", timedelta(0), False, id="exactly at the end"),
        pytest.param("ends_at", SECOND, False, id="a second after the end"),
    ],
)
def test_an_unlock_counts_only_inside_the_window_start_inclusive_end_exclusive(
    api: Api, alice: Player, game: Game, edge: str, offset: timedelta, counts: bool
) -> None:
    season = running_season(game)

    give(alice, achievement(game, "ACE_PILOT"), at=getattr(season, edge) + offset)

    # The unlock itself is recorded either way; only the season decides whether it counts.
    assert stats(alice, game) == (25, 1, 25.0)
    response = season_standing(api, season, alice)
    if counts:
        assert response.status_code == 200, response.content
        assert response.json()["points"] == 25
    else:
        assert_error(response, 404, "not_found")
        assert board(standings(api, season)) == []


def test_only_unlocks_of_the_seasons_game_count(api: Api, alice: Player, game: Game, other_game: Game) -> None:
    season = running_season(game)

    give(alice, achievement(other_game, "FIRST_ORE"), at=season.starts_at + HOUR)

    assert board(standings(api, season)) == []


def test_a_regional_season_ranks_only_that_regions_players(api: Api, alice: Player, bob: Player, game: Game) -> None:
    season = running_season(game, region="eu")
    ace = achievement(game, "ACE_PILOT")

    give(alice, ace, at=season.starts_at + HOUR)
    give(bob, ace, at=season.starts_at + HOUR)

    assert board(standings(api, season)) == [("alice", 25, 1)]
    assert_error(season_standing(api, season, bob), 404, "not_found")
    assert SeasonStanding.objects.filter(season=season, player=bob).count() == 0


def test_asking_a_regional_season_for_another_regions_standings_lists_nobody(
    api: Api, alice: Player, game: Game
) -> None:
    season = running_season(game, region="eu")
    give(alice, achievement(game, "ACE_PILOT"), at=season.starts_at + HOUR)

    assert board(standings(api, season, "?region=na")) == []


def test_a_season_with_chosen_achievements_counts_only_those(api: Api, alice: Player, bob: Player, game: Game) -> None:
    season = running_season(game, achievements=[achievement(game, "ACE_PILOT")])
    at = season.starts_at + HOUR

    give(alice, achievement(game, "FIRST_FLIGHT"), at=at)
    give(alice, achievement(game, "ACE_PILOT"), at=at)
    give(bob, achievement(game, "FIRST_FLIGHT"), at=at)

    assert board(standings(api, season)) == [("alice", 25, 1)]
    assert SeasonStanding.objects.get(season=season, player=alice).achievement_count == 1
    assert_error(season_standing(api, season, bob), 404, "not_found")


def test_one_unlock_counts_in_every_season_it_falls_in(api: Api, alice: Player, game: Game) -> None:
    cup = running_season(game, name="Cup")
    league = running_season(game, name="League", region="eu")
    other_window = season_on(game, name="Next month", starts_at=cup.ends_at, ends_at=cup.ends_at + timedelta(days=30))

    give(alice, achievement(game, "ACE_PILOT"), at=cup.starts_at + HOUR)

    assert board(standings(api, cup)) == [("alice", 25, 1)]
    assert board(standings(api, league)) == [("alice", 25, 1)]
    assert board(standings(api, other_window)) == []


# --- Live standings over the API ----------------------------------------------------------


def test_live_standings_rank_by_points_and_ties_share_a_rank(api: Api, contested: Season) -> None:
    response = standings(api, contested)

    assert board(response) == [("alice", 35, 1), ("bob", 25, 2), ("dana", 25, 2)]
    body = response.json()
    assert body["total"] == 3
    assert body["final"] is False
    assert body["status"] == "running"
    assert body["region"] is None


def test_live_standings_filter_by_region_and_rank_within_it(api: Api, contested: Season) -> None:
    assert board(standings(api, contested, "?region=na")) == [("bob", 25, 1), ("dana", 25, 1)]
    assert board(standings(api, contested, "?region=eu")) == [("alice", 35, 1)]
    assert board(standings(api, contested, "?region=asia")) == []
    assert standings(api, contested, "?region=na").json()["region"] == "na"


def test_live_standings_page_with_limit_and_offset(api: Api, contested: Season) -> None:
    response = standings(api, contested, "?limit=1&offset=2")

    assert board(response) == [("dana", 25, 2)]
    assert response.json()["total"] == 3


def test_live_standings_reject_an_unknown_region(api: Api, contested: Season) -> None:
    error = assert_error(standings(api, contested, "?region=mars"), 400, "invalid")
    assert "region" in error["fields"]


def test_a_players_season_standing_has_rank_points_and_percentile(
    api: Api, contested: Season, alice: Player, bob: Player, charlie: Player
) -> None:
    assert season_standing(api, contested, alice).json() == {
        "rank": 1,
        "points": 35,
        "percentile": 66.67,
        "total": 3,
    }
    assert season_standing(api, contested, bob).json() == {"rank": 2, "points": 25, "percentile": 0.0, "total": 3}
    assert season_standing(api, contested, bob, "?region=na").json() == {
        "rank": 1,
        "points": 25,
        "percentile": 0.0,
        "total": 2,
    }
    # charlie is private: anonymous callers may not look (403), charlie may (not ranked: 404).
    assert_error(season_standing(api, contested, charlie), 403, "forbidden")
    own = api.as_player(charlie).get(f"/api/v1/seasons/{contested.pk}/player/{charlie.pk}")
    assert_error(own, 404, "not_found")


def test_an_unknown_season_is_a_404(api: Api, alice: Player) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    client = api.anonymous()

    assert_error(client.get(f"/api/v1/seasons/{missing}"), 404, "not_found")
    assert_error(client.get(f"/api/v1/seasons/{missing}/standings"), 404, "not_found")
    assert_error(client.get(f"/api/v1/seasons/{missing}/player/{alice.pk}"), 404, "not_found")
    assert_error(client.get("/api/v1/seasons/not-a-uuid/standings"), 404)


def test_the_season_detail_describes_the_season(api: Api, game: Game) -> None:
    ace = achievement(game, "ACE_PILOT")
    season = running_season(game, region="eu", achievements=[ace])

    response = api.anonymous().get(f"/api/v1/seasons/{season.pk}")

    assert response.status_code == 200, response.content
    assert response.json() == {
        "id": str(season.pk),
        "game_id": str(game.pk),
        "name": "Spring Cup",
        "description": "",
        "starts_at": season.starts_at.isoformat(),
        "ends_at": season.ends_at.isoformat(),
        "region": "eu",
        "status": "running",
        "closed_at": None,
        "achievement_ids": [str(ace.pk)],
    }


def test_the_season_list_filters_by_status_and_game(api: Api, game: Game, other_game: Game) -> None:
    now = timezone.now().replace(microsecond=0)
    running_season(game, name="Running")
    season_on(game, name="Scheduled", starts_at=now + timedelta(days=2), ends_at=now + timedelta(days=3))
    close_season(season=ended_season(game, name="Closed"), now=now)
    season_on(other_game, name="Awaiting close", starts_at=now - timedelta(days=3), ends_at=now - SECOND)

    def names(query: str) -> list[str]:
        response = api.anonymous().get(f"/api/v1/seasons{query}")
        assert response.status_code == 200, response.content
        return [season["name"] for season in response.json()["seasons"]]

    assert names("") == ["Scheduled", "Running", "Awaiting close", "Closed"]
    assert names("?status=running") == ["Running"]
    assert names("?status=scheduled") == ["Scheduled"]
    assert names("?status=closed") == ["Closed"]
    assert names("?status=closing") == ["Awaiting close"]
    assert names("?game=moon-miners") == ["Awaiting close"]
    assert names(f"?game={game.pk}&status=closed") == ["Closed"]
    assert_error(api.anonymous().get("/api/v1/seasons?status=finished"), 400, "invalid")
    assert_error(api.anonymous().get("/api/v1/seasons?game=no-such-game"), 404, "not_found")


# --- Closing ------------------------------------------------------------------------------


def test_a_season_is_not_closed_before_its_end_plus_the_grace_period(contested: Season) -> None:
    closed = close_due_seasons(now=contested.ends_at + CLOSE_GRACE - SECOND)

    assert closed == 0
    contested.refresh_from_db()
    assert contested.closed_at is None
    assert archive(contested) == []


def test_a_season_closes_once_its_end_plus_the_grace_period_has_passed(api: Api, contested: Season) -> None:
    now = contested.ends_at + CLOSE_GRACE

    closed = close_due_seasons(now=now)

    assert closed == 1
    contested.refresh_from_db()
    assert contested.closed_at == now
    # Closing on time keeps the window as scheduled.
    assert contested.ends_at == now - CLOSE_GRACE
    assert api.anonymous().get(f"/api/v1/seasons/{contested.pk}").json()["status"] == "closed"


def test_the_periodic_task_closes_due_seasons_and_leaves_running_ones(game: Game, alice: Player) -> None:
    due = ended_season(game, name="Due")
    give(alice, achievement(game, "ACE_PILOT"), at=due.starts_at + HOUR)
    in_grace = ended_season(game, name="In grace", ended_ago=SECOND)
    running = running_season(game, name="Running")

    closed = tasks.close_due_seasons.delay().get()

    assert closed == 1
    assert Season.objects.get(pk=due.pk).closed_at is not None
    assert Season.objects.get(pk=in_grace.pk).closed_at is None
    assert Season.objects.get(pk=running.pk).closed_at is None
    assert archive(due) == [("alice", 1, 25, 0)]


def test_closing_archives_the_final_board_in_order_with_shared_ranks(contested: Season) -> None:
    close_season(season=contested, now=contested.ends_at + CLOSE_GRACE)

    assert archive(contested) == [("alice", 1, 35, 0), ("bob", 2, 25, 1), ("dana", 2, 25, 2)]
    regions = dict(SeasonResult.objects.filter(season=contested).values_list("player__username", "region"))
    assert regions == {"alice": "eu", "bob": "na", "dana": "na"}


def test_a_closed_seasons_standings_are_the_final_ones_from_the_archive(api: Api, contested: Season) -> None:
    close_season(season=contested, now=contested.ends_at + CLOSE_GRACE)

    response = standings(api, contested)

    assert board(response) == [("alice", 35, 1), ("bob", 25, 2), ("dana", 25, 2)]
    assert response.json()["final"] is True
    assert response.json()["status"] == "closed"
    assert board(standings(api, contested, "?region=na")) == [("bob", 25, 1), ("dana", 25, 1)]


def test_a_closed_seasons_player_standing_comes_from_the_archive(
    api: Api, contested: Season, bob: Player, charlie: Player
) -> None:
    close_season(season=contested, now=contested.ends_at + CLOSE_GRACE)

    assert season_standing(api, contested, bob).json() == {"rank": 2, "points": 25, "percentile": 0.0, "total": 3}
    assert season_standing(api, contested, bob, "?region=na").json() == {
        "rank": 1,
        "points": 25,
        "percentile": 0.0,
        "total": 2,
    }
    assert_error(api.as_player(charlie).get(f"/api/v1/seasons/{contested.pk}/player/{charlie.pk}"), 404)


def test_unlocks_after_the_close_do_not_change_the_archive(
    api: Api, contested: Season, game: Game, bob: Player, charlie: Player
) -> None:
    close_season(season=contested, now=contested.ends_at + CLOSE_GRACE)
    before = archive(contested)

    # Even an unlock stamped inside the old window (a late batch, say) cannot move it.
    give(bob, achievement(game, "SECRET_ENDING"), at=contested.starts_at + HOUR)
    give(charlie, achievement(game, "SECRET_ENDING"))

    assert stats(bob, game) == (75, 2, 50.0)
    assert archive(contested) == before
    assert board(standings(api, contested)) == [("alice", 35, 1), ("bob", 25, 2), ("dana", 25, 2)]


def test_a_revocation_after_the_close_does_not_change_the_archive(
    api: Api, contested: Season, game: Game, alice: Player
) -> None:
    close_season(season=contested, now=contested.ends_at + CLOSE_GRACE)
    ace = Unlock.objects.get(player=alice, achievement=achievement(game, "ACE_PILOT"))

    revoke_unlock(unlock=ace, actor=None, reason="exploit")

    assert stats(alice, game) == (10, 1, 25.0)
    assert archive(contested) == [("alice", 1, 35, 0), ("bob", 2, 25, 1), ("dana", 2, 25, 2)]
    assert board(standings(api, contested)) == [("alice", 35, 1), ("bob", 25, 2), ("dana", 25, 2)]


def test_a_revocation_before_the_close_is_reflected_in_the_archive(
    contested: Season, game: Game, alice: Player
) -> None:
    ace = Unlock.objects.get(player=alice, achievement=achievement(game, "ACE_PILOT"))
    revoke_unlock(unlock=ace, actor=None, reason="exploit")

    close_season(season=contested, now=contested.ends_at + CLOSE_GRACE)

    assert archive(contested) == [("bob", 1, 25, 0), ("dana", 1, 25, 1), ("alice", 3, 10, 2)]


def test_closing_twice_changes_nothing_the_second_time(contested: Season) -> None:
    first_close = contested.ends_at + CLOSE_GRACE
    assert close_season(season=contested, now=first_close) is True

    again = close_season(season=contested, now=first_close + HOUR)

    assert again is False
    assert close_due_seasons(now=first_close + 2 * HOUR) == 0
    contested.refresh_from_db()
    assert contested.closed_at == first_close
    assert SeasonResult.objects.filter(season=contested).count() == 3
    assert ModerationAction.objects.filter(kind=ModerationAction.Kind.CLOSE_SEASON).count() == 1


def test_closing_records_a_moderation_action(contested: Season) -> None:
    close_due_seasons(now=contested.ends_at + CLOSE_GRACE)

    action = ModerationAction.objects.get(kind=ModerationAction.Kind.CLOSE_SEASON)
    assert action.season == contested
    assert action.actor is None
    assert action.details == {"players": 3, "automatic": True}


def test_closing_early_ends_the_window_now(api: Api, contested: Season) -> None:
    now = timezone.now().replace(microsecond=0)

    close_season(season=contested, now=now)

    contested.refresh_from_db()
    assert contested.ends_at == now
    assert contested.closed_at == now
    assert api.anonymous().get(f"/api/v1/seasons/{contested.pk}").json()["ends_at"] == now.isoformat()
    assert len(archive(contested)) == 3


def test_a_closed_season_has_no_around_me_window(api: Api, contested: Season, bob: Player) -> None:
    live = api.anonymous().get(f"/api/v1/seasons/{contested.pk}/around/{bob.pk}")
    assert [row["username"] for row in live.json()["rankings"]] == ["alice", "bob", "dana"]

    close_season(season=contested, now=contested.ends_at + CLOSE_GRACE)

    assert_error(api.anonymous().get(f"/api/v1/seasons/{contested.pk}/around/{bob.pk}"), 409, "conflict")


def test_a_season_that_ended_but_is_not_yet_closed_still_shows_live_standings(
    api: Api, game: Game, alice: Player
) -> None:
    season = ended_season(game, ended_ago=SECOND)
    give(alice, achievement(game, "ACE_PILOT"), at=season.starts_at + HOUR)

    response = standings(api, season)

    assert board(response) == [("alice", 25, 1)]
    assert response.json()["status"] == "closing"
    assert response.json()["final"] is False


# --- Saving a season: the one service every surface uses ----------------------------------


def test_a_season_saved_after_its_start_counts_the_unlocks_already_in_its_window(
    api: Api, game: Game, alice: Player, bob: Player
) -> None:
    now = timezone.now().replace(microsecond=0)
    give(alice, achievement(game, "ACE_PILOT"), at=now - HOUR)
    give(bob, achievement(game, "FIRST_FLIGHT"), at=now - 3 * HOUR)  # before the window

    season = save_season(game=game, name="Late Cup", starts_at=now - 2 * HOUR, ends_at=now + HOUR)

    assert [row[:2] for row in board(standings(api, season))] == [("alice", 25)]


def test_changing_a_seasons_rules_recounts_its_standings(api: Api, game: Game, alice: Player, bob: Player) -> None:
    season = running_season(game)
    give(alice, achievement(game, "ACE_PILOT"), at=season.starts_at + HOUR)
    give(bob, achievement(game, "FIRST_FLIGHT"), at=season.starts_at + HOUR)

    save_season(
        season=season,
        game=game,
        name=season.name,
        starts_at=season.starts_at,
        ends_at=season.ends_at,
        achievements=[achievement(game, "FIRST_FLIGHT")],
    )

    assert [row[:2] for row in board(standings(api, season))] == [("bob", 10)]
    assert Season.objects.get(pk=season.pk).achievements.get().api_name == "FIRST_FLIGHT"


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"ends_at": -HOUR}, id="ends before it starts"),
        pytest.param({"region": "mars"}, id="an unknown region"),
        pytest.param({"other_games_achievement": True}, id="another game's achievement"),
    ],
)
def test_a_season_that_breaks_a_rule_is_refused_and_nothing_is_saved(
    game: Game, other_game: Game, change: dict[str, Any]
) -> None:
    starts_at = timezone.now().replace(microsecond=0)
    fields: dict[str, Any] = {"game": game, "name": "Bad Cup", "starts_at": starts_at, "ends_at": starts_at + HOUR}
    if "ends_at" in change:
        fields["ends_at"] = starts_at + change["ends_at"]
    if "region" in change:
        fields["region"] = change["region"]
    if "other_games_achievement" in change:
        fields["achievements"] = [achievement(other_game, "FIRST_ORE")]

    with pytest.raises(Invalid):
        save_season(**fields)

    assert not Season.objects.exists()


def test_a_closed_season_cannot_be_changed(game: Game) -> None:
    season = running_season(game)
    close_season(season=season)
    season.refresh_from_db()

    with pytest.raises(Conflict):
        save_season(season=season, game=game, name="Renamed", starts_at=season.starts_at, ends_at=season.ends_at)

    assert Season.objects.get(pk=season.pk).name != "Renamed"
