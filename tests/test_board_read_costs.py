"""What each board read costs: SQL queries and Redis round trips, with the index built.

Board reads are hot paths, their round trips pinned as the unlock's are: a page of any
board is one Redis call (a Lua script that also checks the index is built) and one query
for the names and privacy of the players listed; a standing is one Redis call; around-me
one call and the names. These tests pin it, so a change that adds a round trip, or a
query per row, fails here. Pages list 100 players, private and friends-only ones among them.

Finding the game is the catalogue's business (`tracker.selectors.get_game`): each test
measures what that lookup costs at that moment and pins what the board read adds to it.

Every read also pays the rate limit one Redis round trip on the limiter's own client
(infra/ratelimits.py): `Meter.read` asserts exactly one for each read measured here, so
the pins below count the rank index alone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.response import Response

from achievements.services import save_season
from leaderboards import selectors, sync
from leaderboards.index import RedisStore
from leaderboards.models import Season, SeasonStanding
from stats.models import PlayerGameStats, PlayerTotals
from tests.conftest import Api
from tests.costs import Meter
from tracker.models import Friendship, Game, Player, Privacy
from tracker.selectors import get_game

CROWD = 120
START = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
ANONYMOUS = selectors.ANONYMOUS_NAME


def game_lookup(game: Game, meter: Meter) -> int:
    """Queries that finding the game costs right now (none once the catalogue holds it)."""
    with meter.measure() as cost:
        get_game(str(game.pk))
    return cost.sql


@dataclass(frozen=True)
class Crowd:
    players: list[Player]  # in board order; every fifth private, the next friends-only
    season: Season


@pytest.fixture
def crowd(rank_index: RedisStore, game: Game, alice: Player) -> Crowd:
    """120 players on the game, global and season boards (tied in pairs), alice among
    them; alice is friends with crowd001 (friends-only) and crowd002 (public)."""
    privacy = {0: Privacy.PRIVATE, 1: Privacy.FRIENDS}
    players = Player.objects.bulk_create(
        Player(username=f"crowd{i:03d}", region=("eu", "na")[i % 2], privacy=privacy.get(i % 5, Privacy.PUBLIC))
        for i in range(CROWD)
    )
    players.insert(CROWD // 2, alice)
    now = timezone.now()
    season = save_season(game=game, name="Cost Cup", starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1))
    scores = [(p, 1000 - i // 2, START + timedelta(seconds=i)) for i, p in enumerate(players)]
    PlayerGameStats.objects.bulk_create(
        PlayerGameStats(player=p, game=game, points=points, points_reached_at=at) for p, points, at in scores
    )
    PlayerTotals.objects.bulk_create(
        PlayerTotals(player=p, points=points, points_reached_at=at) for p, points, at in scores
    )
    SeasonStanding.objects.bulk_create(
        SeasonStanding(season=season, player=p, points=points, points_reached_at=at, updated_at=now)
        for p, points, at in scores
    )
    for friend in (players[1], players[2]):
        Friendship.objects.create(requester=alice, addressee=friend, status=Friendship.Status.ACCEPTED)
    Friendship.objects.create(requester=players[6], addressee=alice)  # pending: not a friend yet
    sync.rebuild(rank_index)
    return Crowd(players, season)


def names(response: Response) -> list[str]:
    return [row["username"] for row in response.json()["rankings"]]


def test_a_game_board_page_of_100_is_one_redis_call_and_one_query_for_the_names(
    api: Api, meter: Meter, crowd: Crowd, game: Game
) -> None:
    response, cost = meter.read(api.anonymous(), f"/api/v1/leaderboards/{game.pk}")

    assert (cost.sql, cost.redis) == (game_lookup(game, meter) + 1, 1)
    assert names(response)[:6] == [ANONYMOUS, ANONYMOUS, "crowd002", "crowd003", "crowd004", ANONYMOUS]
    assert [row["rank"] for row in response.json()["rankings"]][:4] == [1, 1, 3, 3]
    assert len(names(response)) == 100


def test_a_regional_board_page_costs_the_same(api: Api, meter: Meter, crowd: Crowd, game: Game) -> None:
    response, cost = meter.read(api.anonymous(), f"/api/v1/leaderboards/{game.pk}?region=na")

    assert (cost.sql, cost.redis) == (game_lookup(game, meter) + 1, 1)
    assert len(names(response)) == response.json()["total"] == CROWD // 2  # half the crowd is in na


def test_the_global_board_page_is_one_redis_call_and_one_query(api: Api, meter: Meter, crowd: Crowd) -> None:
    response, cost = meter.read(api.anonymous(), "/api/v1/leaderboards/global")

    assert (cost.sql, cost.redis) == (1, 1)
    assert len(names(response)) == 100


def test_a_season_board_page_is_one_redis_call_and_two_queries_with_the_season(
    api: Api, meter: Meter, crowd: Crowd
) -> None:
    response, cost = meter.read(api.anonymous(), f"/api/v1/seasons/{crowd.season.pk}/standings")

    assert (cost.sql, cost.redis) == (2, 1)
    assert len(names(response)) == 100
    assert response.json()["total"] == CROWD + 1


def test_a_standing_is_one_redis_call_and_the_player_lookup(api: Api, meter: Meter, crowd: Crowd, game: Game) -> None:
    someone = crowd.players[42]  # public, tied with the player above

    response, cost = meter.read(api.anonymous(), f"/api/v1/leaderboards/{game.pk}/player/{someone.pk}")

    assert (cost.sql, cost.redis) == (game_lookup(game, meter) + 1, 1)
    assert response.json() == {"rank": 43, "points": 979, "percentile": 63.64, "total": CROWD + 1}


def test_around_me_is_one_redis_call_the_player_lookup_and_the_names(
    api: Api, meter: Meter, crowd: Crowd, game: Game
) -> None:
    someone = crowd.players[43]  # public, tied with the player above

    response, cost = meter.read(api.anonymous(), f"/api/v1/leaderboards/{game.pk}/around/{someone.pk}?radius=5")

    assert (cost.sql, cost.redis) == (game_lookup(game, meter) + 2, 1)
    # Non-public players are listed, anonymous, without their id (docs/players.md, Privacy).
    expected = [str(p.pk) if p.privacy == Privacy.PUBLIC else None for p in crowd.players[38:49]]
    assert [row["player_id"] for row in response.json()["rankings"]] == expected
    assert None in expected
    assert [row["rank"] for row in response.json()["rankings"]] == [39, 39, 41, 41, 43, 43, 45, 45, 47, 47, 49]


def test_a_player_reading_a_page_with_friends_only_players_adds_one_query_for_friendships(
    api: Api, meter: Meter, crowd: Crowd, game: Game, alice: Player
) -> None:
    response, cost = meter.read(api.as_player(alice), f"/api/v1/leaderboards/{game.pk}")

    # The user behind the token, the names, and alice's friendships among those listed.
    assert (cost.sql, cost.redis) == (game_lookup(game, meter) + 3, 1)
    assert names(response)[:7] == [ANONYMOUS, "crowd001", "crowd002", "crowd003", "crowd004", ANONYMOUS, ANONYMOUS]


def test_the_friends_board_is_sql_only_one_query_for_friends_and_one_for_their_rows(
    api: Api, meter: Meter, crowd: Crowd, game: Game, alice: Player
) -> None:
    response, cost = meter.read(api.as_player(alice), f"/api/v1/leaderboards/{game.pk}/friends")

    # The user behind the token, alice's friends, and their rows with names.
    assert (cost.sql, cost.redis) == (game_lookup(game, meter) + 3, 0)
    assert names(response) == ["crowd001", "crowd002", "alice"]


def test_what_a_page_costs_does_not_grow_with_the_page(api: Api, meter: Meter, crowd: Crowd, game: Game) -> None:
    client = api.anonymous()
    _, small = meter.read(client, f"/api/v1/leaderboards/{game.pk}?limit=3")
    _, large = meter.read(client, f"/api/v1/leaderboards/{game.pk}?limit=100")

    assert small == large


def test_the_names_read_by_hand_are_those_the_orm_reads_in_one_query(
    crowd: Crowd, django_assert_num_queries: Any
) -> None:
    listed = [str(p.pk) for p in crowd.players[:100]] + [str(uuid.uuid4())]  # and one unknown

    with django_assert_num_queries(1):
        by_hand = selectors.people_of(listed)
    rows = Player.objects.filter(pk__in=listed).values_list("pk", "username", "privacy")
    by_orm = {str(pk): (username, privacy) for pk, username, privacy in rows}

    assert by_hand == by_orm
    assert len(by_hand) == 100
    assert by_hand[listed[0]] == ("crowd000", Privacy.PRIVATE)
