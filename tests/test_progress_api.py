"""POST /api/v1/achievements/progress: progress only goes up, and reaching the target unlocks once."""

from __future__ import annotations

from achievements.models import Progress, Unlock
from tests.conftest import Api, achievement
from tests.helpers import PROGRESS_URL, assert_error, post, progress, snapshot, stats, totals, unlock
from tracker.models import Game, Player


def stored_progress(player: Player, game: Game) -> int | None:
    return Progress.objects.filter(player=player, achievement__game=game).values_list("value", flat=True).first()


def test_progress_is_stored_without_unlocking(api: Api, alice: Player, game: Game, game_key: str) -> None:
    kills = achievement(game, "KILL_100")

    response = progress(api.as_key(game_key), alice, kills, 40)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["success"] is True
    assert body["achievement"]["id"] == str(kills.pk)
    assert (body["value"], body["target"]) == (40, 100)
    assert (body["unlocked"], body["newly_unlocked"], body["new_rank"]) == (False, False, None)
    assert stored_progress(alice, game) == 40
    assert not Unlock.objects.filter(player=alice).exists()
    assert totals(alice) is None


def test_a_game_key_may_report_progress_by_api_name(api: Api, alice: Player, game: Game, game_key: str) -> None:
    body = {"player_id": str(alice.pk), "achievement": "KILL_100", "value": 7}

    response = post(api.as_key(game_key), PROGRESS_URL, body)

    assert response.status_code == 200, response.content
    assert stored_progress(alice, game) == 7


def test_a_lower_value_reported_later_never_takes_progress_backwards(
    api: Api, alice: Player, game: Game, game_key: str
) -> None:
    client = api.as_key(game_key)
    kills = achievement(game, "KILL_100")
    progress(client, alice, kills, 60)

    response = progress(client, alice, kills, 30)

    assert response.status_code == 200
    assert response.json()["value"] == 60
    assert stored_progress(alice, game) == 60


def test_reaching_the_target_unlocks_the_achievement(api: Api, alice: Player, game: Game, game_key: str) -> None:
    client = api.as_key(game_key)
    kills = achievement(game, "KILL_100")
    progress(client, alice, kills, 99)
    assert not Unlock.objects.filter(player=alice).exists()

    response = progress(client, alice, kills, 100)

    body = response.json()
    assert (body["value"], body["unlocked"], body["newly_unlocked"], body["new_rank"]) == (100, True, True, 1)
    assert Unlock.objects.filter(player=alice, achievement=kills).count() == 1
    assert stats(alice, game) == (15, 1, 25.0)
    assert totals(alice) == (15, 1)


def test_exceeding_the_target_unlocks_and_stores_the_target(api: Api, alice: Player, game: Game, game_key: str) -> None:
    response = progress(api.as_key(game_key), alice, achievement(game, "KILL_100"), 250)

    body = response.json()
    assert (body["value"], body["target"], body["newly_unlocked"]) == (100, 100, True)
    assert stored_progress(alice, game) == 100
    assert stats(alice, game) == (15, 1, 25.0)


def test_reports_after_the_unlock_add_no_points(api: Api, alice: Player, game: Game, game_key: str) -> None:
    client = api.as_key(game_key)
    kills = achievement(game, "KILL_100")
    progress(client, alice, kills, 100)

    again = progress(client, alice, kills, 100).json()
    more = progress(client, alice, kills, 500).json()

    assert (again["unlocked"], again["newly_unlocked"]) == (True, False)
    assert (more["unlocked"], more["newly_unlocked"]) == (True, False)
    assert Unlock.objects.filter(player=alice).count() == 1
    assert stats(alice, game) == (15, 1, 25.0)
    assert totals(alice) == (15, 1)


def test_progress_on_an_achievement_that_is_not_incremental_is_rejected(
    api: Api, alice: Player, game: Game, game_key: str
) -> None:
    before = snapshot()

    error = assert_error(progress(api.as_key(game_key), alice, achievement(game, "ACE_PILOT"), 5), 400, "invalid")

    assert "achievement_id" in error["fields"]
    assert snapshot() == before


def test_negative_progress_is_rejected(api: Api, alice: Player, game: Game, game_key: str) -> None:
    before = snapshot()

    error = assert_error(progress(api.as_key(game_key), alice, achievement(game, "KILL_100"), -1), 400, "invalid")

    assert "value" in error["fields"]
    assert snapshot() == before


def test_progress_that_is_not_a_number_is_rejected(api: Api, alice: Player, game: Game, game_key: str) -> None:
    before = snapshot()

    error = assert_error(progress(api.as_key(game_key), alice, achievement(game, "KILL_100"), "lots"), 400)

    assert "value" in error["fields"]
    assert snapshot() == before


def test_a_player_token_cannot_report_progress_on_a_server_only_achievement(
    api: Api, alice: Player, game: Game
) -> None:
    before = snapshot()

    assert_error(progress(api.as_player(alice), alice, achievement(game, "KILL_100"), 10), 403, "forbidden")
    assert snapshot() == before


def test_another_games_key_cannot_report_progress(api: Api, alice: Player, game: Game, other_game_key: str) -> None:
    before = snapshot()

    assert_error(progress(api.as_key(other_game_key), alice, achievement(game, "KILL_100"), 10), 403, "forbidden")
    assert snapshot() == before


def test_progress_without_credentials_is_401(api: Api, alice: Player, game: Game) -> None:
    before = snapshot()

    assert_error(progress(api.anonymous(), alice, achievement(game, "KILL_100"), 10), 401)
    assert snapshot() == before


def test_progress_on_an_achievement_already_unlocked_reports_it_unlocked(
    api: Api, alice: Player, game: Game, game_key: str
) -> None:
    client = api.as_key(game_key)
    kills = achievement(game, "KILL_100")
    unlock(client, alice, kills)  # the server unlocked it outright

    body = progress(client, alice, kills, 10).json()

    assert (body["unlocked"], body["newly_unlocked"]) == (True, False)
    assert stats(alice, game) == (15, 1, 25.0)
