"""GET /api/v1/leaderboards/...: the game boards, a player's standing, around-me and the global board.

The contract tests run twice: answered from SQL (the default in tests) and from the Redis
rank index (`rank_index`), and each checks which store really answered.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIClient

from achievements.models import Source
from achievements.services import UnlockRequest, import_manifest, unlock_achievements
from leaderboards import selectors
from leaderboards.services import hide_player, restore_player
from tests.conftest import Api, achievement, make_player
from tests.helpers import assert_error, give, unlock
from tracker.models import Friendship, Game, Player, Privacy

BOARDS = "/api/v1/leaderboards"
ANONYMOUS = selectors.ANONYMOUS_NAME


def board(client: APIClient, game: Game | str, **query: Any) -> Response:
    ref = game if isinstance(game, str) else str(game.pk)
    return client.get(f"{BOARDS}/{ref}", query)


def standing(client: APIClient, game: Game, player: Player | str, **query: Any) -> Response:
    ref = player if isinstance(player, str) else str(player.pk)
    return client.get(f"{BOARDS}/{game.pk}/player/{ref}", query)


def around(client: APIClient, game: Game, player: Player, **query: Any) -> Response:
    return client.get(f"{BOARDS}/{game.pk}/around/{player.pk}", query)


def ok(response: Response) -> dict[str, Any]:
    assert response.status_code == 200, response.content
    return response.json()


def row(player: Player, points: int, rank: int, name: str | None = None) -> dict[str, Any]:
    """A board row; an anonymous one (`name` ANONYMOUS) carries no player id either."""
    player_id = None if name == ANONYMOUS else str(player.pk)
    return {"player_id": player_id, "username": name or player.username, "points": points, "rank": rank}


def listed(response: Response) -> list[tuple[str, int, int]]:
    """(username, points, rank) of each row, in order."""
    return [(r["username"], r["points"], r["rank"]) for r in ok(response)["rankings"]]


def seconds_ago(n: int) -> datetime:
    return timezone.now().replace(microsecond=0) - timedelta(seconds=n)


@pytest.fixture
def dave(db: Any) -> Player:
    return make_player("dave", region="asia")


@pytest.fixture
def erin(db: Any) -> Player:
    return make_player("erin", region="na")


@pytest.fixture
def four_scores(game: Game, alice: Player, bob: Player, charlie: Player, dave: Player) -> None:
    """alice 75 (eu), bob 50 (na), charlie 25 (eu, private), dave 10 (asia)."""
    give(alice, achievement(game, "SECRET_ENDING"))
    give(alice, achievement(game, "ACE_PILOT"))
    give(bob, achievement(game, "SECRET_ENDING"))
    give(charlie, achievement(game, "ACE_PILOT"))
    give(dave, achievement(game, "FIRST_FLIGHT"))


@pytest.fixture
def ties(game: Game, alice: Player, bob: Player, dave: Player, erin: Player) -> dict[str, Player]:
    """dave 50 alone on top; two players tied on 25 and two tied on 10.

    Whoever reached a tied score first is chosen so that neither id order would list the
    players correctly: on 25 the earlier one has the smaller id, on 10 the larger one.
    """
    on_25_first, on_25_second = sorted([alice, bob], key=lambda p: str(p.pk))
    on_10_second, on_10_first = sorted([dave, erin], key=lambda p: str(p.pk))
    top = make_player("frank", region="eu")
    give(top, achievement(game, "SECRET_ENDING"), at=seconds_ago(100))
    # The later of the pair had points first, but reached 25 later: reaching the score counts.
    give(on_25_second, achievement(game, "FIRST_FLIGHT"), at=seconds_ago(90))
    give(on_25_first, achievement(game, "ACE_PILOT"), at=seconds_ago(80))
    give(on_25_second, achievement(game, "KILL_100"), at=seconds_ago(70))
    give(on_10_first, achievement(game, "FIRST_FLIGHT"), at=seconds_ago(60))
    give(on_10_second, achievement(game, "FIRST_FLIGHT"), at=seconds_ago(50))
    return {
        "top": top,
        "25 first": on_25_first,
        "25 second": on_25_second,
        "10 first": on_10_first,
        "10 second": on_10_second,
    }


def ranked_crowd(game: Game, count: int, **privacies: str) -> list[Player]:
    """`count` players ranked 1..count on `game` with distinct points (count + 1 - rank),
    given in one batch. `privacies` maps some usernames to a privacy setting."""
    # Eight achievements worth 1, 2, 4, ... 128 points: any score up to 255 is one batch away.
    bits = [{"api_name": f"BIT{b}", "name": f"Bit {b}", "points": 2**b} for b in range(8)]
    import_manifest(manifest={"slug": game.slug, "name": game.name, "achievements": bits})
    by_name = {a.api_name: a for a in game.achievements.filter(api_name__startswith="BIT")}
    players = [
        make_player(f"crowd{i:03d}", region="eu", privacy=privacies.get(f"crowd{i:03d}", Privacy.PUBLIC))
        for i in range(count)
    ]
    requests = [
        UnlockRequest(player.pk, by_name[f"BIT{b}"])
        for rank, player in enumerate(players, start=1)
        for b in range(8)
        if (count + 1 - rank) >> b & 1
    ]
    unlock_achievements(requests, source=Source.GAME_SERVER)
    return players


class TestBoardsAnsweredFromSql:
    """The board contract, answered from indexed SQL (no Redis index)."""

    store = "sql"

    @pytest.fixture(autouse=True)
    def boards_store(self) -> None:
        """Set up before any player or unlock: nothing to do for SQL (the default)."""

    @pytest.fixture(autouse=True)
    def answered_by(self, boards_store: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
        """Records which store answered each board read, and fails the test if it was not ours."""
        sources: list[str] = []
        real_ask = selectors.ask

        def recording_ask(question: Any) -> Any:
            answer, source = real_ask(question)
            sources.append(source)
            return answer, source

        monkeypatch.setattr(selectors, "ask", recording_ask)
        yield sources
        assert sources, "no board read was recorded"
        assert set(sources) <= {self.store}, f"expected every read from {self.store}, got {sources}"

    # --- the board --------------------------------------------------------------------------

    @pytest.mark.usefixtures("four_scores")
    def test_the_board_lists_ranked_players_highest_points_first(
        self,
        api: Api,
        game: Game,
        alice: Player,
        bob: Player,
        charlie: Player,
        dave: Player,
        answered_by: list[str],
    ) -> None:
        body = ok(board(api.anonymous(), game))

        assert body == {
            "rankings": [
                row(alice, 75, 1),
                row(bob, 50, 2),
                row(charlie, 25, 3, ANONYMOUS),  # private: masked for anonymous callers
                row(dave, 10, 4),
            ],
            "total": 4,
            "limit": 100,
            "offset": 0,
            "region": None,
        }
        assert answered_by[-1] == self.store

    @pytest.mark.usefixtures("four_scores")
    def test_the_board_can_be_named_by_the_games_slug(self, api: Api, game: Game) -> None:
        assert listed(board(api.anonymous(), game.slug)) == listed(board(api.anonymous(), game))

    def test_equal_points_share_a_rank_and_whoever_reached_them_first_is_listed_first(
        self, api: Api, game: Game, ties: dict[str, Player]
    ) -> None:
        body = ok(board(api.anonymous(), game))

        assert body["rankings"] == [
            row(ties["top"], 50, 1),
            row(ties["25 first"], 25, 2),
            row(ties["25 second"], 25, 2),
            row(ties["10 first"], 10, 4),
            row(ties["10 second"], 10, 4),
        ]

    def test_limit_and_offset_page_through_the_board_keeping_the_true_ranks(
        self, api: Api, game: Game, ties: dict[str, Player]
    ) -> None:
        client = api.anonymous()

        # This page starts in the middle of the tie on 25.
        body = ok(board(client, game, offset=2, limit=2))

        assert body["rankings"] == [row(ties["25 second"], 25, 2), row(ties["10 first"], 10, 4)]
        assert (body["total"], body["limit"], body["offset"]) == (5, 2, 2)
        assert ok(board(client, game, offset=4, limit=10))["rankings"] == [row(ties["10 second"], 10, 4)]
        assert ok(board(client, game, offset=5))["rankings"] == []
        assert ok(board(client, game, offset=5))["total"] == 5

    @pytest.mark.usefixtures("four_scores")
    def test_a_regional_board_ranks_only_that_regions_players(
        self, api: Api, game: Game, alice: Player, bob: Player, charlie: Player, dave: Player
    ) -> None:
        client = api.anonymous()

        eu = ok(board(client, game, region="eu"))
        na = ok(board(client, game, region="na"))
        asia = ok(board(client, game, region="asia"))
        africa = ok(board(client, game, region="af"))

        assert (eu["rankings"], eu["total"], eu["region"]) == (
            [row(alice, 75, 1), row(charlie, 25, 2, ANONYMOUS)],
            2,
            "eu",
        )
        assert na["rankings"] == [row(bob, 50, 1)]
        assert asia["rankings"] == [row(dave, 10, 1)]
        assert (africa["rankings"], africa["total"]) == ([], 0)

    def test_the_board_shows_the_top_100_by_default(self, api: Api, game: Game) -> None:
        crowd = ranked_crowd(game, 103)

        body = ok(board(api.anonymous(), game))

        assert body["total"] == 103
        assert [r["player_id"] for r in body["rankings"]] == [str(p.pk) for p in crowd[:100]]
        assert [r["rank"] for r in body["rankings"]] == list(range(1, 101))
        assert [r["points"] for r in body["rankings"]] == list(range(103, 3, -1))
        rest = ok(board(api.anonymous(), game, offset=100))
        assert [(r["player_id"], r["rank"]) for r in rest["rankings"]] == [
            (str(p.pk), rank) for rank, p in enumerate(crowd[100:], start=101)
        ]

    def test_the_board_reads_a_bounded_number_of_queries_however_many_are_ranked(
        self, api: Api, game: Game, alice: Player, django_assert_max_num_queries: Any
    ) -> None:
        # Private and friends-only players among them, so masking has work to do.
        privacies = {f"crowd{i:03d}": Privacy.PRIVATE for i in range(0, 60, 3)}
        privacies |= {f"crowd{i:03d}": Privacy.FRIENDS for i in range(1, 60, 3)}
        crowd = ranked_crowd(game, 60, **privacies)
        Friendship.objects.create(requester=alice, addressee=crowd[1], status=Friendship.Status.ACCEPTED)
        as_alice = api.as_player(alice)

        with django_assert_max_num_queries(8):
            body = ok(board(as_alice, game))

        assert len(body["rankings"]) == 60
        names = [r["username"] for r in body["rankings"]]
        assert names[0] == ANONYMOUS  # private
        assert names[1] == "crowd001"  # friends-only, and a friend of alice
        assert names[4] == ANONYMOUS  # friends-only, not a friend
        assert names[2] == "crowd002"  # public

    @pytest.mark.usefixtures("four_scores")
    def test_private_names_are_shown_to_the_player_themself_and_to_the_games_own_key(
        self,
        api: Api,
        game: Game,
        bob: Player,
        charlie: Player,
        game_key: str,
        other_game_key: str,
    ) -> None:
        def name_of_charlie(client: APIClient) -> str:
            [found] = [r for r in ok(board(client, game))["rankings"] if r["points"] == 25]  # charlie's
            return found["username"]

        assert name_of_charlie(api.as_player(charlie)) == "charlie"
        assert name_of_charlie(api.as_key(game_key)) == "charlie"
        assert name_of_charlie(api.anonymous()) == ANONYMOUS
        assert name_of_charlie(api.as_player(bob)) == ANONYMOUS
        assert name_of_charlie(api.as_key(other_game_key)) == ANONYMOUS

    @pytest.mark.usefixtures("four_scores")
    def test_a_hidden_player_is_taken_off_every_board_and_put_back_on_restore(
        self, api: Api, game: Game, alice: Player, bob: Player, dave: Player
    ) -> None:
        client = api.anonymous()

        hide_player(player=alice, actor=None, reason="aimbot")

        assert listed(board(client, game)) == [("bob", 50, 1), (ANONYMOUS, 25, 2), ("dave", 10, 3)]
        assert listed(board(client, game, region="eu")) == [(ANONYMOUS, 25, 1)]
        assert ok(board(client, game))["total"] == 3
        assert_error(standing(client, game, alice), 404, "not_found")
        # Unlocks while hidden are recorded but still do not put the player on a board.
        give(alice, achievement(game, "FIRST_FLIGHT"))
        assert "alice" not in {name for name, _, _ in listed(board(client, game))}

        restore_player(player=alice, actor=None, reason="appeal upheld")

        assert listed(board(client, game))[0] == ("alice", 85, 1)
        assert ok(standing(client, game, alice))["points"] == 85

    @pytest.mark.usefixtures("four_scores")
    def test_players_with_no_points_are_not_on_the_board(
        self, api: Api, game: Game, bob: Player, dave: Player, erin: Player
    ) -> None:
        client = api.anonymous()
        import_manifest(
            manifest={
                "slug": game.slug,
                "name": game.name,
                "achievements": [{"api_name": "TUTORIAL", "name": "Tutorial", "points": 0}],
            }
        )
        # erin has played and unlocked something, but it is worth nothing.
        give(erin, achievement(game, "TUTORIAL"))
        # A 0-point unlock neither ranks nor moves a player who has points.
        give(bob, achievement(game, "TUTORIAL"))

        body = ok(board(client, game))

        assert str(erin.pk) not in {r["player_id"] for r in body["rankings"]}
        assert body["total"] == 4
        assert ok(board(client, game, region="na"))["rankings"] == [row(bob, 50, 1)]
        error = assert_error(standing(client, game, erin), 404, "not_found")
        assert "not ranked" in error["message"]
        assert ok(standing(client, game, bob))["rank"] == 2
        # Nor is a player who never played this game at all.
        assert "not ranked" in assert_error(standing(client, game, make_player("gina")), 404)["message"]

    # --- a player's standing ----------------------------------------------------------------

    @pytest.mark.usefixtures("four_scores")
    def test_a_players_standing_gives_rank_points_and_the_percentile_below_them(
        self, api: Api, game: Game, alice: Player, bob: Player, dave: Player
    ) -> None:
        client = api.anonymous()

        assert ok(standing(client, game, alice)) == {"rank": 1, "points": 75, "percentile": 75.0, "total": 4}
        assert ok(standing(client, game, bob)) == {"rank": 2, "points": 50, "percentile": 50.0, "total": 4}
        assert ok(standing(client, game, dave)) == {"rank": 4, "points": 10, "percentile": 0.0, "total": 4}
        assert ok(standing(client, game, bob, region="na")) == {
            "rank": 1,
            "points": 50,
            "percentile": 0.0,
            "total": 1,
        }
        assert ok(standing(client, game, alice, region="eu"))["percentile"] == 50.0

    def test_tied_players_share_rank_and_percentile(self, api: Api, game: Game, ties: dict[str, Player]) -> None:
        client = api.anonymous()

        first = ok(standing(client, game, ties["25 first"]))
        second = ok(standing(client, game, ties["25 second"]))

        assert first == second == {"rank": 2, "points": 25, "percentile": 40.0, "total": 5}
        assert ok(standing(client, game, ties["10 second"])) == {"rank": 4, "points": 10, "percentile": 0.0, "total": 5}

    def test_a_player_not_on_a_regional_board_is_not_ranked_there(self, api: Api, game: Game, bob: Player) -> None:
        give(bob, achievement(game, "ACE_PILOT"))

        assert ok(standing(api.anonymous(), game, bob, region="na"))["rank"] == 1
        assert "not ranked" in assert_error(standing(api.anonymous(), game, bob, region="eu"), 404)["message"]

    @pytest.mark.usefixtures("four_scores")
    def test_a_private_players_standing_is_shown_only_to_themself_and_game_servers(
        self, api: Api, game: Game, bob: Player, charlie: Player, game_key: str
    ) -> None:
        assert_error(standing(api.anonymous(), game, charlie), 403, "forbidden")
        assert_error(standing(api.as_player(bob), game, charlie), 403, "forbidden")

        assert ok(standing(api.as_player(charlie), game, charlie)) == {
            "rank": 3,
            "points": 25,
            "percentile": 25.0,
            "total": 4,
        }
        assert ok(standing(api.as_key(game_key), game, charlie))["rank"] == 3

    # --- around me --------------------------------------------------------------------------

    def test_around_me_lists_the_players_just_above_and_below_with_their_ranks(
        self, api: Api, game: Game, ties: dict[str, Player]
    ) -> None:
        client = api.anonymous()

        body = ok(around(client, game, ties["25 second"], radius=1))

        assert body == {
            "rankings": [row(ties["25 first"], 25, 2), row(ties["25 second"], 25, 2), row(ties["10 first"], 10, 4)],
            "total": 5,
        }

    def test_around_me_is_cut_short_at_the_top_and_bottom_of_the_board(
        self, api: Api, game: Game, ties: dict[str, Player]
    ) -> None:
        client = api.anonymous()

        top = ok(around(client, game, ties["top"], radius=2))["rankings"]
        bottom = ok(around(client, game, ties["10 second"], radius=3))["rankings"]
        default = ok(around(client, game, ties["10 first"]))["rankings"]

        assert [(r["player_id"], r["rank"]) for r in top] == [
            (str(ties["top"].pk), 1),
            (str(ties["25 first"].pk), 2),
            (str(ties["25 second"].pk), 2),
        ]
        assert [r["player_id"] for r in bottom] == [
            str(ties[k].pk) for k in ("25 first", "25 second", "10 first", "10 second")
        ]
        assert len(default) == 5  # radius 5 by default: the whole of this small board

    @pytest.mark.usefixtures("four_scores")
    def test_around_a_region_masks_private_names_and_refuses_the_unranked(
        self, api: Api, game: Game, alice: Player, charlie: Player, erin: Player
    ) -> None:
        client = api.anonymous()

        body = ok(around(client, game, alice, region="eu", radius=1))

        assert body == {"rankings": [row(alice, 75, 1), row(charlie, 25, 2, ANONYMOUS)], "total": 2}
        assert "not ranked" in assert_error(around(client, game, erin), 404)["message"]
        assert_error(around(client, game, charlie), 403, "forbidden")
        assert ok(around(api.as_player(charlie), game, charlie, radius=1))["rankings"][1]["username"] == "charlie"

    # --- the global board -------------------------------------------------------------------

    def test_the_global_board_totals_points_over_every_game_per_region(
        self, api: Api, game: Game, other_game: Game, alice: Player, bob: Player, charlie: Player, erin: Player
    ) -> None:
        client = api.anonymous()
        give(bob, achievement(game, "SECRET_ENDING"), at=seconds_ago(50))
        give(alice, achievement(game, "ACE_PILOT"), at=seconds_ago(40))
        give(alice, achievement(other_game, "FIRST_ORE"), at=seconds_ago(30))
        give(erin, achievement(game, "FIRST_FLIGHT"), at=seconds_ago(20))
        give(charlie, achievement(other_game, "FIRST_ORE"), at=seconds_ago(10))

        everywhere = ok(client.get(f"{BOARDS}/global"))
        eu = ok(client.get(f"{BOARDS}/global", {"region": "eu"}))
        na = ok(client.get(f"{BOARDS}/global", {"region": "na", "limit": 1}))

        assert everywhere["rankings"] == [
            row(bob, 50, 1),
            row(alice, 30, 2),
            row(erin, 10, 3),
            row(charlie, 5, 4, ANONYMOUS),
        ]
        assert (everywhere["total"], everywhere["region"]) == (4, None)
        assert eu["rankings"] == [row(alice, 30, 1), row(charlie, 5, 2, ANONYMOUS)]
        assert (na["rankings"], na["total"]) == ([row(bob, 50, 1)], 2)
        assert ok(client.get(f"{BOARDS}/global/player/{alice.pk}")) == {
            "rank": 2,
            "points": 30,
            "percentile": 50.0,
            "total": 4,
        }
        assert ok(client.get(f"{BOARDS}/global/player/{alice.pk}", {"region": "eu"}))["rank"] == 1
        assert ok(client.get(f"{BOARDS}/global/around/{erin.pk}", {"radius": 1}))["rankings"] == [
            row(alice, 30, 2),
            row(erin, 10, 3),
            row(charlie, 5, 4, ANONYMOUS),
        ]
        assert_error(client.get(f"{BOARDS}/global/player/{charlie.pk}"), 403)

    # --- the unlock's new_rank --------------------------------------------------------------

    @pytest.mark.usefixtures("four_scores")
    def test_the_unlock_response_reports_the_rank_the_board_then_shows(
        self, api: Api, game: Game, game_key: str, dave: Player, erin: Player
    ) -> None:
        client = api.as_key(game_key)

        # dave, 10 -> 60, passes bob (50) and charlie (25).
        passed = unlock(client, dave, achievement(game, "SECRET_ENDING"))
        # erin, 0 -> 25, ties with charlie who got there first.
        tied = unlock(client, erin, achievement(game, "ACE_PILOT"))

        assert (passed.status_code, passed.json()["new_rank"]) == (201, 2)
        assert (tied.status_code, tied.json()["new_rank"]) == (201, 4)
        ranks = {r["username"]: r["rank"] for r in ok(board(client, game))["rankings"]}
        assert ranks == {"alice": 1, "dave": 2, "bob": 3, "charlie": 4, "erin": 4}
        assert ok(standing(client, game, dave))["rank"] == 2
        again = unlock(client, erin, achievement(game, "ACE_PILOT"))
        assert (again.status_code, again.json()["new_rank"]) == (200, 4)


class TestBoardsAnsweredFromRedis(TestBoardsAnsweredFromSql):
    """The same contract, answered from the Redis rank index kept up to date after commit."""

    store = "redis"

    @pytest.fixture(autouse=True)
    def boards_store(self, rank_index: Any) -> None:
        """The index is built before any player or unlock exists, so every unlock and
        moderation reaches it the way it would in production: after commit."""


# --- input errors (no store is asked) -----------------------------------------------------------


@pytest.mark.parametrize(
    "query, field",
    [
        ({"region": "mars"}, "region"),
        ({"region": "EU"}, "region"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"page": 2}, "page"),
    ],
)
def test_a_bad_board_query_is_a_400_naming_the_field(api: Api, game: Game, query: dict[str, Any], field: str) -> None:
    error = assert_error(board(api.anonymous(), game, **query), 400, "invalid")

    assert field in error["fields"]


def test_a_bad_region_is_refused_on_every_kind_of_board(api: Api, game: Game, alice: Player) -> None:
    give(alice, achievement(game, "ACE_PILOT"))
    client = api.anonymous()

    assert_error(standing(client, game, alice, region="mars"), 400, "invalid")
    assert_error(around(client, game, alice, region="mars"), 400, "invalid")
    assert_error(client.get(f"{BOARDS}/global", {"region": "mars"}), 400, "invalid")
    assert_error(client.get(f"{BOARDS}/global/player/{alice.pk}", {"region": "mars"}), 400, "invalid")


@pytest.mark.parametrize("radius", [0, 51, "wide"])
def test_an_around_radius_out_of_range_is_a_400(api: Api, game: Game, alice: Player, radius: Any) -> None:
    give(alice, achievement(game, "ACE_PILOT"))

    error = assert_error(around(api.anonymous(), game, alice, radius=radius), 400, "invalid")

    assert "radius" in error["fields"]


@pytest.mark.parametrize("ref", [str(uuid.uuid4()), "no-such-game"])
def test_an_unknown_game_is_a_404(api: Api, alice: Player, ref: str) -> None:
    client = api.anonymous()

    assert_error(client.get(f"{BOARDS}/{ref}"), 404, "not_found")
    assert_error(client.get(f"{BOARDS}/{ref}/player/{alice.pk}"), 404, "not_found")
    assert_error(client.get(f"{BOARDS}/{ref}/around/{alice.pk}"), 404, "not_found")


def test_an_unknown_player_is_a_404_with_a_message_saying_so(api: Api, game: Game) -> None:
    missing = uuid.uuid4()

    error = assert_error(standing(api.anonymous(), game, str(missing)), 404, "not_found")

    assert "Unknown player" in error["message"]


@pytest.mark.usefixtures("four_scores")
def test_a_game_key_sees_a_private_players_standing_on_its_own_games_board_only(
    api: Api, game: Game, other_game: Game, charlie: Player, game_key: str, other_game_key: str
) -> None:
    give(charlie, achievement(other_game, "FIRST_ORE"))
    own, other = api.as_key(game_key), api.as_key(other_game_key)

    assert ok(standing(own, game, charlie))["rank"] == 3
    assert ok(around(own, game, charlie, radius=1))["rankings"][1]["username"] == "charlie"
    assert ok(standing(other, other_game, charlie))["points"] == 5
    assert_error(standing(other, game, charlie), 403, "forbidden")
    assert_error(around(other, game, charlie), 403, "forbidden")
    # The global board spans every game, so no single game's key may see it.
    assert_error(own.get(f"{BOARDS}/global/player/{charlie.pk}"), 403, "forbidden")
    assert_error(own.get(f"{BOARDS}/global/around/{charlie.pk}"), 403, "forbidden")


@pytest.mark.usefixtures("four_scores")
def test_a_game_key_sees_a_public_players_standing_on_any_board(
    api: Api, game: Game, alice: Player, other_game_key: str
) -> None:
    other = api.as_key(other_game_key)

    assert ok(standing(other, game, alice))["rank"] == 1
    assert ok(other.get(f"{BOARDS}/global/player/{alice.pk}"))["rank"] == 1
