"""GET /api/v1/games/{id}/achievements: the set, global unlock %, rarity, and hidden ones masked."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from achievements.models import Rarity, rarity_tier
from achievements.services import import_manifest, record_progress
from achievements.tasks import refresh_rarity
from tests.conftest import Api, achievement, make_player
from tests.helpers import assert_error, give, manifest, unlock
from tracker.models import Game, Player
from tracker.services import game_key_create

HIDDEN = {"api_name": None, "name": "Hidden achievement", "description": ""}


def achievements_url(game: Game) -> str:
    return f"/api/v1/games/{game.pk}/achievements"


def by_id(response: Any) -> dict[str, dict[str, Any]]:
    assert response.status_code == 200, response.content
    return {item["id"]: item for item in response.json()["achievements"]}


def secret_of(response: Any, game: Game) -> dict[str, Any]:
    return by_id(response)[str(achievement(game, "SECRET_ENDING").pk)]


@pytest.fixture
def four_players_played(alice: Player, bob: Player, charlie: Player, game: Game, other_game: Game) -> None:
    """Four players active in star-raiders: all flew, two are aces, only alice saw the ending.

    A fifth player only plays moon-miners and must not count toward star-raiders' rates.
    """
    dave = make_player("dave")
    for player in (alice, bob, charlie, dave):
        give(player, achievement(game, "FIRST_FLIGHT"))
    for player in (alice, bob):
        give(player, achievement(game, "ACE_PILOT"))
    give(alice, achievement(game, "SECRET_ENDING"))
    give(make_player("erin"), achievement(other_game, "FIRST_ORE"))
    refresh_rarity(str(game.pk))


def test_the_set_is_listed_with_global_unlock_percentage_and_rarity(
    api: Api, game: Game, four_players_played: None
) -> None:
    response = api.anonymous().get(achievements_url(game))

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["game"] == {"id": str(game.pk), "slug": "star-raiders", "name": "Star Raiders"}
    rows = [(a["api_name"], a["points"], a["unlock_percentage"], a["rarity"]) for a in body["achievements"]]
    assert rows == [
        ("FIRST_FLIGHT", 10, 100.0, "common"),
        ("ACE_PILOT", 25, 50.0, "common"),
        (None, 50, 25.0, "uncommon"),  # the hidden SECRET_ENDING, masked
        ("KILL_100", 15, 0.0, "legendary"),
    ]
    ace = body["achievements"][1]
    assert ace["id"] == str(achievement(game, "ACE_PILOT").pk)
    assert (ace["unlocked"], ace["unlocked_at"], ace["progress"]) == (False, None, None)


def test_the_set_may_be_addressed_by_slug(api: Api, game: Game) -> None:
    response = api.anonymous().get("/api/v1/games/star-raiders/achievements")

    assert len(by_id(response)) == 4


def test_an_unknown_game_is_404(api: Api, db: Any) -> None:
    assert_error(api.anonymous().get(f"/api/v1/games/{uuid.uuid4()}/achievements"), 404, "not_found")
    assert_error(api.anonymous().get("/api/v1/games/no-such-game/achievements"), 404, "not_found")


def test_a_hidden_achievement_is_masked_for_anonymous_callers(api: Api, game: Game) -> None:
    secret = secret_of(api.anonymous().get(achievements_url(game)), game)

    assert {k: secret[k] for k in HIDDEN} == HIDDEN
    assert secret["hidden"] is True


def test_a_hidden_achievement_is_masked_for_a_player_who_has_not_unlocked_it(
    api: Api, alice: Player, bob: Player, game: Game
) -> None:
    give(alice, achievement(game, "SECRET_ENDING"))

    secret = secret_of(api.as_player(bob).get(achievements_url(game)), game)

    assert {k: secret[k] for k in HIDDEN} == HIDDEN
    assert secret["unlocked"] is False


def test_a_hidden_achievement_is_revealed_to_a_player_who_unlocked_it(api: Api, alice: Player, game: Game) -> None:
    give(alice, achievement(game, "SECRET_ENDING"))

    secret = secret_of(api.as_player(alice).get(achievements_url(game)), game)

    assert (secret["api_name"], secret["name"], secret["unlocked"]) == ("SECRET_ENDING", "The Truth", True)
    assert secret["unlocked_at"] is not None


def test_a_hidden_achievement_is_revealed_to_the_games_own_key(api: Api, game: Game, game_key: str) -> None:
    secret = secret_of(api.as_key(game_key).get(achievements_url(game)), game)

    assert (secret["api_name"], secret["name"]) == ("SECRET_ENDING", "The Truth")


def test_a_hidden_achievement_stays_masked_for_another_games_key(api: Api, game: Game, other_game_key: str) -> None:
    secret = secret_of(api.as_key(other_game_key).get(achievements_url(game)), game)

    assert {k: secret[k] for k in HIDDEN} == HIDDEN


def test_a_player_sees_their_own_unlocks_and_progress(api: Api, alice: Player, game: Game) -> None:
    give(alice, achievement(game, "ACE_PILOT"))
    record_progress(player=alice, achievement=achievement(game, "KILL_100"), value=42, source="server")

    items = by_id(api.as_player(alice).get(achievements_url(game)))

    ace, kills = items[str(achievement(game, "ACE_PILOT").pk)], items[str(achievement(game, "KILL_100").pk)]
    assert (ace["unlocked"], ace["progress"]) == (True, None)
    assert ace["unlocked_at"] is not None
    assert (kills["unlocked"], kills["progress"], kills["progress_target"]) == (False, 42, 100)


def test_unlock_percentage_follows_unlocks_made_through_the_api(
    api: Api,
    alice: Player,
    bob: Player,
    game: Game,
    game_key: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client = api.as_key(game_key)
    with django_capture_on_commit_callbacks(execute=True):
        unlock(client, alice, achievement(game, "FIRST_FLIGHT"))
    with django_capture_on_commit_callbacks(execute=True):
        unlock(client, bob, achievement(game, "FIRST_FLIGHT"))
    with django_capture_on_commit_callbacks(execute=True):
        unlock(client, alice, achievement(game, "ACE_PILOT"))

    items = by_id(api.anonymous().get(achievements_url(game)))

    assert items[str(achievement(game, "FIRST_FLIGHT").pk)]["unlock_percentage"] == 100.0
    assert items[str(achievement(game, "ACE_PILOT").pk)]["unlock_percentage"] == 50.0


@pytest.mark.parametrize(
    ("percentage", "unlock_count", "tier"),
    [
        (100.0, 9, Rarity.COMMON),
        (50.0, 5, Rarity.COMMON),
        (49.99, 5, Rarity.UNCOMMON),
        (20.0, 2, Rarity.UNCOMMON),
        (19.99, 2, Rarity.RARE),
        (5.0, 1, Rarity.RARE),
        (4.99, 1, Rarity.EPIC),
        (1.0, 1, Rarity.EPIC),
        (0.99, 1, Rarity.LEGENDARY),
        (0.0, 0, Rarity.LEGENDARY),
    ],
)
def test_rarity_tiers_follow_the_thresholds(percentage: float, unlock_count: int, tier: Rarity) -> None:
    assert rarity_tier(percentage, unlock_count) == tier.value


# --- Query counts: a list costs the same few queries however long it is -------------------


@pytest.fixture
def big_game(alice: Player, bob: Player) -> Game:
    """A game of 15 achievements (some hidden, some incremental) with unlocks and progress."""
    document = manifest("big-game", 15)
    for item in document["achievements"][::3]:
        item["hidden"] = True
    for item in document["achievements"][1::4]:
        item["progress_target"] = 10
    game = import_manifest(manifest=document).game
    for item in game.achievements.all()[:12]:
        give(alice, item)
        if item.position % 2:
            give(bob, item)
        if item.progress_target:
            record_progress(player=bob, achievement=item, value=3, source="server")
    refresh_rarity(str(game.pk))
    return game


@pytest.mark.parametrize(("caller", "queries"), [("anonymous", 2), ("player", 5), ("key", 3)])
def test_the_game_list_needs_a_fixed_number_of_queries(
    api: Api, bob: Player, big_game: Game, caller: str, queries: int, django_assert_max_num_queries: Any
) -> None:
    # game, achievements; + the player's unlocks and progress (and the user) / + the key.
    client = {
        "anonymous": api.anonymous,
        "player": lambda: api.as_player(bob),
        "key": lambda: api.as_key(game_key_create(game=big_game)),
    }[caller]()

    with django_assert_max_num_queries(queries):
        response = client.get(achievements_url(big_game))

    assert len(by_id(response)) == 15


def test_the_player_list_needs_a_fixed_number_of_queries(
    api: Api, alice: Player, big_game: Game, django_assert_max_num_queries: Any
) -> None:
    client = api.as_player(alice)

    # user, player, game, the page, the total.
    with django_assert_max_num_queries(5):
        response = client.get(f"/api/v1/players/{alice.pk}/achievements?game=big-game")

    assert response.status_code == 200, response.content
    assert response.json()["total"] == 12
    assert len(response.json()["achievements"]) == 12
