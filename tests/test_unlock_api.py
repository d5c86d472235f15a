"""POST /api/v1/achievements/unlock: the contract body, idempotency, timestamps, ranks, and who may unlock."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.utils import timezone

from achievements.models import Source, Unlock
from tests.conftest import Api, achievement, make_player
from tests.helpers import UNLOCK_URL, assert_error, give, post, snapshot, stats, totals, unlock
from tracker.models import Game, GameKey, Player


def test_a_game_key_unlocks_an_achievement_and_gets_the_contract_body(
    api: Api, alice: Player, game: Game, game_key: str
) -> None:
    ace = achievement(game, "ACE_PILOT")

    response = unlock(api.as_key(game_key), alice, ace)

    assert response.status_code == 201, response.content
    row = Unlock.objects.get(player=alice, achievement=ace)
    assert response.json() == {
        "success": True,
        "achievement": {
            "id": str(ace.pk),
            "game_id": str(game.pk),
            "api_name": "ACE_PILOT",
            "name": "Ace Pilot",
            "description": "",
            "icon": "",
            "points": 25,
            "hidden": False,
            "client_unlockable": False,
            "progress_target": None,
            "type": None,
            "unlock_percentage": 0.0,
            "rarity": "legendary",
        },
        "new_rank": 1,
        "already_unlocked": False,
        "unlocked_at": row.unlocked_at.isoformat(),
    }
    assert row.source == Source.GAME_SERVER
    assert row.game_key == GameKey.objects.get(game=game)
    assert row.game_id == game.pk
    assert row.claimed_at is None
    assert stats(alice, game) == (25, 1, 25.0)
    assert totals(alice) == (25, 1)


def test_unlocking_again_answers_200_already_unlocked_and_counts_nothing_twice(
    api: Api, alice: Player, game: Game, game_key: str
) -> None:
    client = api.as_key(game_key)
    ace = achievement(game, "ACE_PILOT")
    first = unlock(client, alice, ace)
    assert first.status_code == 201

    again = unlock(client, alice, ace)

    assert again.status_code == 200, again.content
    body = again.json()
    assert body["success"] is True
    assert body["already_unlocked"] is True
    assert body["achievement"]["id"] == str(ace.pk)
    assert body["new_rank"] == 1
    # The time reported is the original unlock's, not this request's.
    assert body["unlocked_at"] == first.json()["unlocked_at"]
    assert Unlock.objects.filter(player=alice).count() == 1
    assert stats(alice, game) == (25, 1, 25.0)
    assert totals(alice) == (25, 1)


def test_a_game_key_may_name_the_achievement_by_its_api_name(
    api: Api, alice: Player, game: Game, game_key: str
) -> None:
    body = {"player_id": str(alice.pk), "achievement": "SECRET_ENDING"}

    response = post(api.as_key(game_key), UNLOCK_URL, body)

    assert response.status_code == 201, response.content
    assert response.json()["achievement"]["id"] == str(achievement(game, "SECRET_ENDING").pk)
    assert Unlock.objects.filter(player=alice, achievement__api_name="SECRET_ENDING").exists()
    assert stats(alice, game) == (50, 1, 25.0)


def test_naming_both_an_achievement_id_and_an_api_name_is_rejected(
    api: Api, alice: Player, game: Game, game_key: str
) -> None:
    ace = achievement(game, "ACE_PILOT")
    before = snapshot()
    body = {"player_id": str(alice.pk), "achievement_id": str(ace.pk), "achievement": "ACE_PILOT"}

    error = assert_error(post(api.as_key(game_key), UNLOCK_URL, body), 400, "invalid")

    assert "achievement_id" in error["fields"]
    assert snapshot() == before


def test_a_player_token_cannot_name_the_achievement_by_api_name(api: Api, alice: Player, game: Game) -> None:
    before = snapshot()
    body = {"player_id": str(alice.pk), "achievement": "FIRST_FLIGHT"}

    error = assert_error(post(api.as_player(alice), UNLOCK_URL, body), 403, "forbidden")

    assert "achievement" in error["fields"]
    assert snapshot() == before


def test_a_timestamp_far_in_the_future_is_rejected_and_nothing_is_written(
    api: Api, alice: Player, game: Game, game_key: str
) -> None:
    before = snapshot()
    tomorrow = (timezone.now() + timedelta(days=1)).isoformat()

    error = assert_error(
        unlock(api.as_key(game_key), alice, achievement(game, "ACE_PILOT"), timestamp=tomorrow), 400, "invalid"
    )

    assert "timestamp" in error["fields"]
    assert snapshot() == before


def test_a_timestamp_slightly_in_the_past_is_kept_as_the_claimed_time(
    api: Api, alice: Player, game: Game, game_key: str
) -> None:
    claimed = timezone.now() - timedelta(minutes=5)

    response = unlock(api.as_key(game_key), alice, achievement(game, "ACE_PILOT"), timestamp=claimed.isoformat())

    assert response.status_code == 201, response.content
    row = Unlock.objects.get(player=alice)
    assert row.claimed_at == claimed
    # Boards and seasons use the server's clock, not the reporter's.
    assert row.unlocked_at > claimed
    assert datetime.fromisoformat(response.json()["unlocked_at"]) == row.unlocked_at


def test_a_timestamp_a_little_ahead_of_the_server_clock_is_tolerated(
    api: Api, alice: Player, game: Game, game_key: str
) -> None:
    claimed = timezone.now() + timedelta(seconds=30)

    response = unlock(api.as_key(game_key), alice, achievement(game, "ACE_PILOT"), timestamp=claimed.isoformat())

    assert response.status_code == 201, response.content
    assert Unlock.objects.get(player=alice).claimed_at == claimed


def test_new_rank_puts_the_player_behind_someone_with_more_points(
    api: Api, alice: Player, bob: Player, game: Game, game_key: str
) -> None:
    give(bob, achievement(game, "SECRET_ENDING"))  # 50 points

    response = unlock(api.as_key(game_key), alice, achievement(game, "ACE_PILOT"))  # 25 points

    assert response.status_code == 201
    assert response.json()["new_rank"] == 2


def test_players_with_equal_points_share_a_rank(
    api: Api, alice: Player, bob: Player, charlie: Player, game: Game, game_key: str
) -> None:
    give(charlie, achievement(game, "SECRET_ENDING"))  # 50
    give(bob, achievement(game, "ACE_PILOT"))  # 25

    response = unlock(api.as_key(game_key), alice, achievement(game, "ACE_PILOT"))  # 25, tied with bob

    assert response.json()["new_rank"] == 2


def test_ranks_after_a_tie_skip_the_shared_places(
    api: Api, alice: Player, bob: Player, charlie: Player, game: Game, game_key: str
) -> None:
    give(charlie, achievement(game, "SECRET_ENDING"))  # 50: rank 1
    give(bob, achievement(game, "ACE_PILOT"))  # 25: rank 2
    give(make_player("dave"), achievement(game, "ACE_PILOT"))  # 25: rank 2

    response = unlock(api.as_key(game_key), alice, achievement(game, "FIRST_FLIGHT"))  # 10

    assert response.json()["new_rank"] == 4


# --- Who may unlock ----------------------------------------------------------------------


def test_no_credentials_get_401_with_a_www_authenticate_header(api: Api, alice: Player, game: Game) -> None:
    before = snapshot()

    response = unlock(api.anonymous(), alice, achievement(game, "FIRST_FLIGHT"))

    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"]
    assert snapshot() == before


def test_a_garbage_api_key_gets_401(api: Api, alice: Player, game: Game) -> None:
    before = snapshot()

    response = unlock(api.as_key("garbage"), alice, achievement(game, "ACE_PILOT"))

    assert_error(response, 401, "authentication_failed")
    assert response["WWW-Authenticate"]
    assert snapshot() == before


def test_an_unknown_api_key_gets_401(api: Api, alice: Player, game: Game, game_key: str) -> None:
    prefix, _, secret = game_key.partition(".")
    forged = f"{prefix}.{secret[::-1]}"
    before = snapshot()

    assert_error(unlock(api.as_key(forged), alice, achievement(game, "ACE_PILOT")), 401, "authentication_failed")
    assert_error(unlock(api.as_key("abcd1234.efgh"), alice, achievement(game, "ACE_PILOT")), 401)
    assert snapshot() == before


def test_a_revoked_api_key_gets_401(api: Api, alice: Player, game: Game, game_key: str) -> None:
    GameKey.objects.filter(game=game).update(revoked=True)
    before = snapshot()

    assert_error(unlock(api.as_key(game_key), alice, achievement(game, "ACE_PILOT")), 401, "authentication_failed")
    assert snapshot() == before


def test_a_game_key_cannot_unlock_another_games_achievement(
    api: Api, alice: Player, game: Game, other_game_key: str
) -> None:
    before = snapshot()

    response = unlock(api.as_key(other_game_key), alice, achievement(game, "ACE_PILOT"))

    assert_error(response, 403, "forbidden")
    assert snapshot() == before


def test_a_game_key_naming_another_games_api_name_finds_nothing(
    api: Api, alice: Player, game: Game, other_game_key: str
) -> None:
    before = snapshot()
    body = {"player_id": str(alice.pk), "achievement": "ACE_PILOT"}

    assert_error(post(api.as_key(other_game_key), UNLOCK_URL, body), 404, "not_found")
    assert snapshot() == before


def test_a_player_token_unlocks_its_own_client_unlockable_achievement(api: Api, alice: Player, game: Game) -> None:
    response = unlock(api.as_player(alice), alice, achievement(game, "FIRST_FLIGHT"))

    assert response.status_code == 201, response.content
    assert response.json()["already_unlocked"] is False
    row = Unlock.objects.get(player=alice)
    assert row.source == Source.PLAYER_CLIENT
    assert row.game_key is None
    assert stats(alice, game) == (10, 1, 25.0)


def test_a_player_token_cannot_unlock_for_another_player(api: Api, alice: Player, bob: Player, game: Game) -> None:
    before = snapshot()

    response = unlock(api.as_player(alice), bob, achievement(game, "FIRST_FLIGHT"))

    assert_error(response, 403, "forbidden")
    assert snapshot() == before


def test_a_player_token_cannot_unlock_a_server_only_achievement(api: Api, alice: Player, game: Game) -> None:
    before = snapshot()

    response = unlock(api.as_player(alice), alice, achievement(game, "ACE_PILOT"))

    assert_error(response, 403, "forbidden")
    assert snapshot() == before


def test_an_unknown_player_is_404(api: Api, game: Game, game_key: str) -> None:
    before = snapshot()
    body = {"player_id": str(uuid.uuid4()), "achievement": "ACE_PILOT"}

    assert_error(post(api.as_key(game_key), UNLOCK_URL, body), 404, "not_found")
    assert snapshot() == before


def test_an_unknown_achievement_id_is_404(api: Api, alice: Player, game: Game, game_key: str) -> None:
    before = snapshot()
    body = {"player_id": str(alice.pk), "achievement_id": str(uuid.uuid4())}

    assert_error(post(api.as_key(game_key), UNLOCK_URL, body), 404, "not_found")
    assert snapshot() == before


def test_an_unknown_api_name_is_404(api: Api, alice: Player, game: Game, game_key: str) -> None:
    before = snapshot()
    body = {"player_id": str(alice.pk), "achievement": "NO_SUCH_THING"}

    assert_error(post(api.as_key(game_key), UNLOCK_URL, body), 404, "not_found")
    assert snapshot() == before


def test_a_deactivated_player_cannot_be_unlocked_for(api: Api, alice: Player, game: Game, game_key: str) -> None:
    Player.objects.filter(pk=alice.pk).update(is_active=False)
    before = snapshot()

    assert_error(unlock(api.as_key(game_key), alice, achievement(game, "ACE_PILOT")), 404, "not_found")
    assert snapshot() == before
