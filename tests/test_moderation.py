"""Moderation: hiding a cheater from every board and restoring them, revoking unlocks (totals,
completion, seasons and ranks follow), the audit log, and doing both from the admin."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.response import Response

from achievements.models import Progress, Unlock
from achievements.services import revoke_unlock, save_season
from infra.errors import NotFound
from leaderboards.boards import Board
from leaderboards.models import ModerationAction, Season, SeasonStanding
from leaderboards.services import hide_player, restore_player
from tests.conftest import Api, achievement, make_player
from tests.helpers import assert_error, give, logged_in, progress, staff, stats, totals, unlock
from tracker.models import Game, Player

HOUR = timedelta(hours=1)
PLAYER_CHANGELIST = "/admin/tracker/player/"
UNLOCK_CHANGELIST = "/admin/achievements/unlock/"


@pytest.fixture
def dana(db: Any) -> Player:
    return make_player("dana", region="eu")


@pytest.fixture
def season(game: Game) -> Season:
    now = timezone.now().replace(microsecond=0)
    return save_season(game=game, name="Spring Cup", starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1))


@pytest.fixture
def boards(game: Game, season: Season, alice: Player, bob: Player, dana: Player) -> Season:
    """alice (eu) 35 points, bob (na) 25, dana (eu) 10, all inside the running season."""
    at = season.starts_at + HOUR
    give(alice, achievement(game, "FIRST_FLIGHT"), at=at)
    give(alice, achievement(game, "ACE_PILOT"), at=at)
    give(bob, achievement(game, "ACE_PILOT"), at=at + HOUR)
    give(dana, achievement(game, "FIRST_FLIGHT"), at=at + 2 * HOUR)
    return season


def rows(response: Response) -> list[tuple[str, int, int]]:
    """(username, points, rank) rows of a board response, in board order."""
    assert response.status_code == 200, response.content
    return [(row["username"], row["points"], row["rank"]) for row in response.json()["rankings"]]


def every_board(api: Api, game: Game, season: Season) -> dict[str, list[tuple[str, int, int]]]:
    client = api.anonymous()
    return {
        "game": rows(client.get(f"/api/v1/leaderboards/{game.pk}")),
        "game eu": rows(client.get(f"/api/v1/leaderboards/{game.pk}?region=eu")),
        "global": rows(client.get("/api/v1/leaderboards/global")),
        "global eu": rows(client.get("/api/v1/leaderboards/global?region=eu")),
        "season": rows(client.get(f"/api/v1/seasons/{season.pk}/standings")),
        "season eu": rows(client.get(f"/api/v1/seasons/{season.pk}/standings?region=eu")),
    }


WITH_ALICE = {
    "game": [("alice", 35, 1), ("bob", 25, 2), ("dana", 10, 3)],
    "game eu": [("alice", 35, 1), ("dana", 10, 2)],
    "global": [("alice", 35, 1), ("bob", 25, 2), ("dana", 10, 3)],
    "global eu": [("alice", 35, 1), ("dana", 10, 2)],
    "season": [("alice", 35, 1), ("bob", 25, 2), ("dana", 10, 3)],
    "season eu": [("alice", 35, 1), ("dana", 10, 2)],
}
WITHOUT_ALICE = {
    "game": [("bob", 25, 1), ("dana", 10, 2)],
    "game eu": [("dana", 10, 1)],
    "global": [("bob", 25, 1), ("dana", 10, 2)],
    "global eu": [("dana", 10, 1)],
    "season": [("bob", 25, 1), ("dana", 10, 2)],
    "season eu": [("dana", 10, 1)],
}


@pytest.fixture
def manager(db: Any) -> Player:
    return staff("morgan", group="Community managers")


def action_names(response: Any) -> set[str]:
    """The admin actions a changelist offers the logged-in user."""
    assert response.status_code == 200
    form = response.context["action_form"]  # None when no action is offered at all
    return {name for name, _ in form.fields["action"].choices if name} if form else set()


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in response.context["messages"]]


# --- Hiding a player ----------------------------------------------------------------------


def test_a_hidden_player_disappears_from_every_board_and_others_move_up(
    api: Api, game: Game, boards: Season, alice: Player
) -> None:
    assert every_board(api, game, boards) == WITH_ALICE

    hide_player(player=alice, actor=None, reason="aimbot")

    assert every_board(api, game, boards) == WITHOUT_ALICE


def test_a_hidden_player_is_not_ranked_anywhere(api: Api, game: Game, boards: Season, alice: Player) -> None:
    hide_player(player=alice, actor=None, reason="aimbot")
    client = api.anonymous()

    for path in (
        f"/api/v1/leaderboards/{game.pk}/player/{alice.pk}",
        f"/api/v1/leaderboards/{game.pk}/around/{alice.pk}",
        f"/api/v1/leaderboards/global/player/{alice.pk}",
        f"/api/v1/seasons/{boards.pk}/player/{alice.pk}",
    ):
        assert_error(client.get(path), 404, "not_found")


def test_hiding_keeps_the_players_unlocks_and_totals(game: Game, boards: Season, alice: Player) -> None:
    hide_player(player=alice, actor=None, reason="aimbot")

    assert Unlock.objects.filter(player=alice).count() == 2
    assert stats(alice, game) == (35, 2, 50.0)
    assert totals(alice) == (35, 2)


def test_a_restored_player_is_back_on_every_board_with_the_same_points(
    api: Api, game: Game, boards: Season, alice: Player
) -> None:
    hide_player(player=alice, actor=None, reason="aimbot")

    restore_player(player=alice, actor=None, reason="appeal upheld")

    assert every_board(api, game, boards) == WITH_ALICE
    standing = api.anonymous().get(f"/api/v1/leaderboards/{game.pk}/player/{alice.pk}")
    assert standing.json() == {"rank": 1, "points": 35, "percentile": 66.67, "total": 3}


def test_unlocks_while_hidden_still_count_once_restored(api: Api, game: Game, boards: Season, alice: Player) -> None:
    hide_player(player=alice, actor=None, reason="aimbot")
    give(alice, achievement(game, "SECRET_ENDING"), at=boards.starts_at + 4 * HOUR)
    assert every_board(api, game, boards) == WITHOUT_ALICE

    restore_player(player=alice, actor=None, reason="appeal upheld")

    assert every_board(api, game, boards)["season"] == [("alice", 85, 1), ("bob", 25, 2), ("dana", 10, 3)]


def test_hiding_and_restoring_are_logged_with_actor_and_reason(boards: Season, alice: Player, manager: Player) -> None:
    hide_player(player=alice, actor=manager, reason="aimbot")
    restore_player(player=alice, actor=manager, reason="appeal upheld")

    logged = ModerationAction.objects.order_by("created", "pk").values_list("kind", "actor", "player", "reason")
    assert list(logged) == [
        ("hide", manager.pk, alice.pk, "aimbot"),
        ("restore", manager.pk, alice.pk, "appeal upheld"),
    ]


def test_hiding_and_restoring_move_the_redis_rank_index_too(
    api: Api, rank_index: Any, game: Game, season: Season, alice: Player, bob: Player
) -> None:
    at = season.starts_at + HOUR
    give(alice, achievement(game, "ACE_PILOT"), at=at)
    give(bob, achievement(game, "FIRST_FLIGHT"), at=at)
    season_path = f"/api/v1/seasons/{season.pk}/standings"
    assert rank_index.client.zcard(Board.game(game.pk).key) == 2

    hide_player(player=alice, actor=None, reason="aimbot")

    client = api.anonymous()
    assert rank_index.client.zscore(Board.game(game.pk).key, str(alice.pk)) is None
    assert rows(client.get(f"/api/v1/leaderboards/{game.pk}")) == [("bob", 10, 1)]
    assert rows(client.get(f"/api/v1/leaderboards/{game.pk}?region=eu")) == []
    assert rows(client.get("/api/v1/leaderboards/global")) == [("bob", 10, 1)]
    assert rows(client.get(season_path)) == [("bob", 10, 1)]
    # Unlocking while hidden must not sneak them back onto the index.
    give(alice, achievement(game, "FIRST_FLIGHT"), at=at + HOUR)
    assert rows(client.get(f"/api/v1/leaderboards/{game.pk}")) == [("bob", 10, 1)]

    restore_player(player=alice, actor=None, reason="appeal upheld")

    assert rows(client.get(f"/api/v1/leaderboards/{game.pk}")) == [("alice", 35, 1), ("bob", 10, 2)]
    assert rows(client.get(f"/api/v1/leaderboards/{game.pk}?region=eu")) == [("alice", 35, 1)]
    assert rows(client.get(season_path)) == [("alice", 35, 1), ("bob", 10, 2)]


# --- Revoking an unlock -------------------------------------------------------------------


def the_unlock(player: Player, game: Game, api_name: str) -> Unlock:
    return Unlock.objects.get(player=player, achievement=achievement(game, api_name))


def test_revoking_an_unlock_removes_it_and_takes_back_its_points(game: Game, boards: Season, alice: Player) -> None:
    revoke_unlock(unlock=the_unlock(alice, game, "ACE_PILOT"), actor=None, reason="exploit")

    assert not Unlock.objects.filter(player=alice, achievement=achievement(game, "ACE_PILOT")).exists()
    assert stats(alice, game) == (10, 1, 25.0)
    assert totals(alice) == (10, 1)
    assert SeasonStanding.objects.get(season=boards, player=alice).points == 10


def test_after_a_revocation_the_others_move_up_on_every_board(
    api: Api, game: Game, boards: Season, alice: Player, bob: Player
) -> None:
    revoke_unlock(unlock=the_unlock(alice, game, "ACE_PILOT"), actor=None, reason="exploit")

    assert every_board(api, game, boards) == {
        "game": [("bob", 25, 1), ("alice", 10, 2), ("dana", 10, 2)],
        "game eu": [("alice", 10, 1), ("dana", 10, 1)],
        "global": [("bob", 25, 1), ("alice", 10, 2), ("dana", 10, 2)],
        "global eu": [("alice", 10, 1), ("dana", 10, 1)],
        "season": [("bob", 25, 1), ("alice", 10, 2), ("dana", 10, 2)],
        "season eu": [("alice", 10, 1), ("dana", 10, 1)],
    }
    standing = api.anonymous().get(f"/api/v1/leaderboards/{game.pk}/player/{bob.pk}")
    assert standing.json() == {"rank": 1, "points": 25, "percentile": 66.67, "total": 3}


def test_revoking_a_players_only_unlock_takes_them_off_the_board(
    api: Api, game: Game, boards: Season, dana: Player
) -> None:
    revoke_unlock(unlock=the_unlock(dana, game, "FIRST_FLIGHT"), actor=None, reason="exploit")

    assert stats(dana, game) == (0, 0, 0.0)
    assert_error(api.anonymous().get(f"/api/v1/leaderboards/{game.pk}/player/{dana.pk}"), 404, "not_found")
    assert_error(api.anonymous().get(f"/api/v1/seasons/{boards.pk}/player/{dana.pk}"), 404, "not_found")


def test_revoking_an_unlock_from_before_the_season_leaves_the_season_alone(
    api: Api, game: Game, season: Season, alice: Player
) -> None:
    give(alice, achievement(game, "FIRST_FLIGHT"), at=season.starts_at - HOUR)
    give(alice, achievement(game, "ACE_PILOT"), at=season.starts_at + HOUR)

    revoke_unlock(unlock=the_unlock(alice, game, "FIRST_FLIGHT"), actor=None, reason="exploit")

    assert stats(alice, game) == (25, 1, 25.0)
    assert rows(api.anonymous().get(f"/api/v1/seasons/{season.pk}/standings")) == [("alice", 25, 1)]


def test_a_revoked_achievement_can_be_unlocked_again(
    api: Api, game: Game, game_key: str, boards: Season, alice: Player
) -> None:
    ace = achievement(game, "ACE_PILOT")
    revoke_unlock(unlock=the_unlock(alice, game, "ACE_PILOT"), actor=None, reason="exploit")

    response = unlock(api.as_key(game_key), alice, ace)

    assert response.status_code == 201, response.content
    assert response.json()["already_unlocked"] is False
    assert stats(alice, game) == (35, 2, 50.0)
    assert totals(alice) == (35, 2)


def test_revoking_an_incremental_achievement_resets_its_progress(
    api: Api, game: Game, game_key: str, alice: Player
) -> None:
    kills = achievement(game, "KILL_100")
    client = api.as_key(game_key)
    assert progress(client, alice, kills, 100).status_code in (200, 201)
    assert Unlock.objects.filter(player=alice, achievement=kills).exists()

    revoke_unlock(unlock=the_unlock(alice, game, "KILL_100"), actor=None, reason="kill farming")
    # A fresh report below the target must not unlock it again off the old progress.
    progress(client, alice, kills, 40)

    assert not Unlock.objects.filter(player=alice, achievement=kills).exists()
    assert Progress.objects.get(player=alice, achievement=kills).value == 40


def test_a_revocation_is_logged_with_actor_player_reason_and_achievement(
    game: Game, boards: Season, alice: Player, manager: Player
) -> None:
    ace = achievement(game, "ACE_PILOT")

    revoke_unlock(unlock=the_unlock(alice, game, "ACE_PILOT"), actor=manager, reason="exploit")

    action = ModerationAction.objects.get(kind=ModerationAction.Kind.REVOKE)
    assert (action.actor, action.player, action.reason) == (manager, alice, "exploit")
    assert action.details["achievement"] == str(ace.pk)
    assert action.details["api_name"] == "ACE_PILOT"
    assert action.details["points"] == 25


def test_revoking_an_already_revoked_unlock_is_not_found(game: Game, boards: Season, alice: Player) -> None:
    revoked = the_unlock(alice, game, "ACE_PILOT")
    revoke_unlock(unlock=revoked, actor=None, reason="exploit")

    with pytest.raises(NotFound):
        revoke_unlock(unlock=revoked, actor=None, reason="exploit, again")

    assert stats(alice, game) == (10, 1, 25.0)
    assert ModerationAction.objects.filter(kind=ModerationAction.Kind.REVOKE).count() == 1


# --- In the admin, as a community manager -------------------------------------------------


def test_hiding_from_the_admin_asks_for_a_reason_first_and_changes_nothing(
    boards: Season, alice: Player, manager: Player
) -> None:
    response = logged_in(manager).post(
        PLAYER_CHANGELIST, {"action": "hide_from_boards", "_selected_action": [str(alice.pk)]}
    )

    assert response.status_code == 200
    assert "admin/moderation_reason.html" in [t.name for t in response.templates]
    assert b"Reason (required)" in response.content
    assert b'name="confirm" value="yes"' in response.content
    assert f'name="_selected_action" value="{alice.pk}"'.encode() in response.content
    alice.refresh_from_db()
    assert alice.boards_hidden is False
    assert not ModerationAction.objects.exists()


def test_hiding_from_the_admin_with_a_reason_hides_and_logs_it(
    api: Api, game: Game, boards: Season, alice: Player, manager: Player
) -> None:
    client = logged_in(manager)
    body = {"action": "hide_from_boards", "_selected_action": [str(alice.pk)], "confirm": "yes", "reason": "aimbot"}

    response = client.post(PLAYER_CHANGELIST, body, follow=True)

    assert response.redirect_chain[-1][0].endswith(PLAYER_CHANGELIST)
    assert "Hide from leaderboards: done for 1." in messages_of(response)
    alice.refresh_from_db()
    assert alice.boards_hidden is True
    action = ModerationAction.objects.get()
    assert (action.kind, action.actor, action.player, action.reason) == ("hide", manager, alice, "aimbot")
    assert every_board(api, game, boards) == WITHOUT_ALICE


def test_confirming_without_a_reason_asks_again(boards: Season, alice: Player, manager: Player) -> None:
    body = {"action": "hide_from_boards", "_selected_action": [str(alice.pk)], "confirm": "yes", "reason": "  "}

    response = logged_in(manager).post(PLAYER_CHANGELIST, body)

    assert response.status_code == 200
    assert "admin/moderation_reason.html" in [t.name for t in response.templates]
    alice.refresh_from_db()
    assert alice.boards_hidden is False
    assert not ModerationAction.objects.exists()


def test_restoring_from_the_admin_brings_the_player_back(
    api: Api, game: Game, boards: Season, alice: Player, manager: Player
) -> None:
    hide_player(player=alice, actor=manager, reason="aimbot")
    body = {"action": "restore_to_boards", "_selected_action": [str(alice.pk)], "confirm": "yes", "reason": "appeal"}

    response = logged_in(manager).post(PLAYER_CHANGELIST, body)

    assert response.status_code == 302
    assert every_board(api, game, boards) == WITH_ALICE
    assert ModerationAction.objects.filter(kind="restore", actor=manager, player=alice, reason="appeal").exists()


def test_revoking_from_the_admin_asks_for_a_reason_first_and_changes_nothing(
    game: Game, boards: Season, alice: Player, manager: Player
) -> None:
    ace = the_unlock(alice, game, "ACE_PILOT")

    response = logged_in(manager).post(UNLOCK_CHANGELIST, {"action": "revoke_unlocks", "_selected_action": [ace.pk]})

    assert response.status_code == 200
    assert "admin/moderation_reason.html" in [t.name for t in response.templates]
    assert Unlock.objects.filter(pk=ace.pk).exists()
    assert stats(alice, game) == (35, 2, 50.0)
    assert not ModerationAction.objects.exists()


def test_revoking_from_the_admin_with_a_reason_revokes_and_logs_it(
    api: Api, game: Game, boards: Season, alice: Player, manager: Player
) -> None:
    ace = the_unlock(alice, game, "ACE_PILOT")
    body = {"action": "revoke_unlocks", "_selected_action": [ace.pk], "confirm": "yes", "reason": "exploit"}

    response = logged_in(manager).post(UNLOCK_CHANGELIST, body)

    assert response.status_code == 302
    assert not Unlock.objects.filter(pk=ace.pk).exists()
    assert stats(alice, game) == (10, 1, 25.0)
    action = ModerationAction.objects.get()
    assert (action.kind, action.actor, action.player, action.reason) == ("revoke", manager, alice, "exploit")
    assert rows(api.anonymous().get(f"/api/v1/leaderboards/{game.pk}"))[0] == ("bob", 25, 1)


def test_the_admin_confirms_how_many_unlocks_it_revoked(
    game: Game, boards: Season, alice: Player, bob: Player, manager: Player
) -> None:
    selected = [the_unlock(alice, game, "ACE_PILOT").pk, the_unlock(bob, game, "ACE_PILOT").pk]
    body = {"action": "revoke_unlocks", "_selected_action": selected, "confirm": "yes", "reason": "exploit"}

    response = logged_in(manager).post(UNLOCK_CHANGELIST, body, follow=True)

    assert "Revoke selected unlocks: done for 2." in messages_of(response)


def test_staff_without_the_moderate_permission_are_not_offered_moderation(
    game: Game, boards: Season, alice: Player
) -> None:
    clerk = staff("clerk", perms=("tracker.view_player", "achievements.view_unlock"))
    client = logged_in(clerk)

    assert "hide_from_boards" not in action_names(client.get(PLAYER_CHANGELIST))
    assert "restore_to_boards" not in action_names(client.get(PLAYER_CHANGELIST))
    assert "revoke_unlocks" not in action_names(client.get(UNLOCK_CHANGELIST))


def test_staff_without_the_moderate_permission_cannot_force_a_moderation(
    game: Game, boards: Season, alice: Player
) -> None:
    clerk = staff("clerk", perms=("tracker.view_player", "achievements.view_unlock"))
    client = logged_in(clerk)
    ace = the_unlock(alice, game, "ACE_PILOT")

    hide = client.post(
        PLAYER_CHANGELIST,
        {"action": "hide_from_boards", "_selected_action": [str(alice.pk)], "confirm": "yes", "reason": "x"},
    )
    revoke = client.post(
        UNLOCK_CHANGELIST, {"action": "revoke_unlocks", "_selected_action": [ace.pk], "confirm": "yes", "reason": "x"}
    )

    # The changelist answers as if nothing was asked: no reason page, no change.
    assert "admin/moderation_reason.html" not in [t.name for t in hide.templates + revoke.templates]
    alice.refresh_from_db()
    assert alice.boards_hidden is False
    assert Unlock.objects.filter(pk=ace.pk).exists()
    assert not ModerationAction.objects.exists()


def test_a_community_manager_is_offered_moderation(manager: Player) -> None:
    client = logged_in(manager)

    assert {"hide_from_boards", "restore_to_boards"} <= action_names(client.get(PLAYER_CHANGELIST))
    assert "revoke_unlocks" in action_names(client.get(UNLOCK_CHANGELIST))


ACHIEVEMENT_CHANGELIST = "/admin/achievements/achievement/"


def test_granting_an_achievement_from_the_admin_asks_for_players_and_a_reason(
    game: Game, alice: Player, manager: Player
) -> None:
    secret = achievement(game, "SECRET_ENDING")
    body = {"action": "grant_to_players", "_selected_action": [str(secret.pk)]}

    response = logged_in(manager).post(ACHIEVEMENT_CHANGELIST, body)

    assert response.status_code == 200
    assert b'name="players"' in response.content and b'name="reason"' in response.content
    assert not Unlock.objects.filter(achievement=secret).exists()


def test_a_grant_unlocks_through_the_one_path_and_logs_each_new_unlock(
    api: Api, game: Game, alice: Player, bob: Player, manager: Player
) -> None:
    secret = achievement(game, "SECRET_ENDING")
    give(bob, secret)  # already has it: granted again, counted once
    body = {
        "action": "grant_to_players",
        "_selected_action": [str(secret.pk)],
        "confirm": "yes",
        "players": "alice, bob",
        "reason": "ending did not report (bug #88)",
    }

    response = logged_in(manager).post(ACHIEVEMENT_CHANGELIST, body)

    assert response.status_code == 302
    unlock_row = Unlock.objects.get(player=alice, achievement=secret)
    assert unlock_row.source == "admin"
    assert stats(alice, game) == (50, 1, 25.0)
    assert stats(bob, game) == (50, 1, 25.0)
    logged = ModerationAction.objects.get()
    assert (logged.kind, logged.actor, logged.player, logged.reason) == (
        "grant",
        manager,
        alice,
        "ending did not report (bug #88)",
    )


def test_a_grant_naming_an_unknown_player_changes_nothing(game: Game, alice: Player, manager: Player) -> None:
    secret = achievement(game, "SECRET_ENDING")
    body = {
        "action": "grant_to_players",
        "_selected_action": [str(secret.pk)],
        "confirm": "yes",
        "players": "alice nobody",
        "reason": "support",
    }

    response = logged_in(manager).post(ACHIEVEMENT_CHANGELIST, body)

    assert response.status_code == 200
    assert b"No active player named nobody." in response.content
    assert not Unlock.objects.filter(achievement=secret).exists()
