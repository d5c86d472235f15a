"""Staff roles and the season admin: who may do what, and a community manager's whole
season flow (create, watch live standings, close now, read the archive)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django import forms
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from achievements.services import save_season
from leaderboards.admin import SeasonForm
from leaderboards.models import ModerationAction, Season, SeasonResult
from leaderboards.services import close_season, hide_player
from tests.conftest import achievement, make_player
from tests.helpers import give, logged_in, staff
from tracker.models import Game, GameMember, Player

SEASONS = "/admin/leaderboards/season/"
HOUR = timedelta(hours=1)


@pytest.fixture
def manager(db: Any) -> Player:
    return staff("morgan", "Community managers")


@pytest.fixture
def developer(db: Any) -> Player:
    return staff("devon", "Game developers")


def split(prefix: str, moment: datetime) -> dict[str, str]:
    """The admin's split date/time inputs for one datetime (the site runs on UTC)."""
    return {f"{prefix}_0": moment.strftime("%Y-%m-%d"), f"{prefix}_1": moment.strftime("%H:%M:%S")}


def season_form(game: Game, *, starts_at: datetime, ends_at: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "game": str(game.pk),
        "name": "Winter Cup",
        "description": "Most points in two weeks wins.",
        "region": "",
        **split("starts_at", starts_at),
        **split("ends_at", ends_at),
        **fields,
    }


def offered_actions(response: Any) -> set[str]:
    """The admin actions a changelist offers the logged-in user."""
    form = response.context["action_form"]  # None when no action is offered at all
    return {name for name, _ in form.fields["action"].choices if name} if form else set()


def running_season(game: Game) -> Season:
    now = timezone.now().replace(microsecond=0)
    return save_season(game=game, name="Spring Cup", starts_at=now - HOUR, ends_at=now + HOUR)


# --- The roles ----------------------------------------------------------------------------


def permissions_of(group: str) -> set[str]:
    rows = Group.objects.get(name=group).permissions.values_list("content_type__app_label", "codename")
    return {f"{app}.{codename}" for app, codename in rows}


def test_community_managers_may_run_seasons_and_moderate(db: Any) -> None:
    granted = permissions_of("Community managers")

    assert {
        "leaderboards.add_season",
        "leaderboards.change_season",
        "leaderboards.view_seasonresult",
        "leaderboards.view_moderationaction",
        "leaderboards.moderate",
        "tracker.view_player",
        "achievements.view_unlock",
    } <= granted
    # Least privilege: the archive and the audit log are never edited, players never deleted.
    assert not granted & {
        "leaderboards.delete_season",
        "leaderboards.change_seasonresult",
        "leaderboards.change_moderationaction",
        "leaderboards.delete_moderationaction",
        "tracker.change_player",
        "tracker.delete_player",
    }


def test_game_developers_may_only_read_seasons(db: Any) -> None:
    granted = permissions_of("Game developers")

    assert {"leaderboards.view_season", "tracker.view_game"} <= granted
    assert not granted & {"leaderboards.add_season", "leaderboards.change_season", "leaderboards.moderate"}


def test_the_roles_reach_their_members(manager: Player, developer: Player) -> None:
    assert manager.has_perms(["leaderboards.add_season", "leaderboards.change_season", "leaderboards.moderate"])
    assert developer.has_perm("leaderboards.view_season")
    assert not developer.has_perm("leaderboards.change_season")
    assert not developer.has_perm("leaderboards.moderate")


# --- Who gets into the admin --------------------------------------------------------------


def test_a_plain_player_is_sent_to_the_admin_login(alice: Player) -> None:
    client = logged_in(alice)

    for path in ("/admin/", f"{SEASONS}add/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith(f"/admin/login/?next={path}")


def test_a_game_developer_cannot_add_or_change_seasons(developer: Player, game: Game) -> None:
    season = running_season(game)
    client = logged_in(developer)
    now = timezone.now()

    assert client.get(f"{SEASONS}add/").status_code == 403
    assert client.post(f"{SEASONS}add/", season_form(game, starts_at=now, ends_at=now + HOUR)).status_code == 403
    response = client.post(
        f"{SEASONS}{season.pk}/change/",
        season_form(game, starts_at=season.starts_at, ends_at=season.ends_at, name="Renamed"),
    )

    assert response.status_code == 403
    assert list(Season.objects.values_list("name", flat=True)) == ["Spring Cup"]


def test_a_game_developer_may_look_at_seasons_but_is_offered_no_season_actions(developer: Player, game: Game) -> None:
    GameMember.objects.create(game=game, player=developer)  # a developer sees their own games' seasons
    running_season(game)

    response = logged_in(developer).get(SEASONS)

    assert response.status_code == 200
    assert b"Spring Cup" in response.content
    assert offered_actions(response) == set()


def test_a_community_manager_is_offered_close_now_and_rebuild(manager: Player, game: Game) -> None:
    running_season(game)

    assert {"close_now", "rebuild_board"} <= offered_actions(logged_in(manager).get(SEASONS))


def test_a_game_developer_cannot_close_a_season_from_the_admin(developer: Player, game: Game) -> None:
    season = running_season(game)

    logged_in(developer).post(SEASONS, {"action": "close_now", "_selected_action": [str(season.pk)]})

    season.refresh_from_db()
    assert season.closed_at is None
    assert not SeasonResult.objects.exists()
    assert not ModerationAction.objects.exists()


def test_a_community_manager_cannot_delete_a_season(manager: Player, game: Game) -> None:
    season = running_season(game)

    response = logged_in(manager).post(f"{SEASONS}{season.pk}/delete/", {"post": "yes"})

    assert response.status_code == 403
    assert Season.objects.filter(pk=season.pk).exists()


# --- A community manager's season, end to end ---------------------------------------------


def test_a_community_manager_creates_a_season_in_the_admin(manager: Player, game: Game) -> None:
    client = logged_in(manager)
    assert client.get(f"{SEASONS}add/").status_code == 200
    starts_at = datetime(2031, 3, 1, 18, 0, tzinfo=UTC)
    ace = achievement(game, "ACE_PILOT")

    response = client.post(
        f"{SEASONS}add/",
        season_form(
            game, starts_at=starts_at, ends_at=starts_at + timedelta(days=14), region="eu", achievements=[ace.pk]
        ),
    )

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    season = Season.objects.get()
    assert (season.game, season.name, season.region) == (game, "Winter Cup", "eu")
    assert (season.starts_at, season.ends_at) == (starts_at, starts_at + timedelta(days=14))
    assert list(season.achievements.all()) == [ace]
    assert season.closed_at is None
    assert season.status == "scheduled"


def test_a_season_created_after_its_start_counts_the_unlocks_already_in_its_window(
    manager: Player, game: Game, alice: Player
) -> None:
    now = timezone.now().replace(microsecond=0)
    give(alice, achievement(game, "ACE_PILOT"), at=now - HOUR)

    logged_in(manager).post(
        f"{SEASONS}add/", season_form(game, starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1))
    )

    season = Season.objects.get()
    response = Client().get(f"/api/v1/seasons/{season.pk}/standings")
    assert [(row["username"], row["points"]) for row in response.json()["rankings"]] == [("alice", 25)]


def test_narrowing_a_running_seasons_achievements_updates_its_standings(
    manager: Player, game: Game, alice: Player
) -> None:
    season = running_season(game)
    give(alice, achievement(game, "FIRST_FLIGHT"), at=season.starts_at + timedelta(minutes=5))
    give(alice, achievement(game, "ACE_PILOT"), at=season.starts_at + timedelta(minutes=5))
    ace = achievement(game, "ACE_PILOT")

    changed = logged_in(manager).post(
        f"{SEASONS}{season.pk}/change/",
        season_form(game, starts_at=season.starts_at, ends_at=season.ends_at, name="Spring Cup", achievements=[ace.pk]),
    )

    assert changed.status_code == 302
    assert list(season.achievements.all()) == [ace]
    response = Client().get(f"/api/v1/seasons/{season.pk}/standings")
    assert [(row["username"], row["points"]) for row in response.json()["rankings"]] == [("alice", 25)]


def test_a_season_cannot_count_another_games_achievements(manager: Player, game: Game, other_game: Game) -> None:
    now = timezone.now().replace(microsecond=0)

    response = logged_in(manager).post(
        f"{SEASONS}add/",
        season_form(game, starts_at=now, ends_at=now + HOUR, achievements=[achievement(other_game, "FIRST_ORE").pk]),
    )

    assert response.status_code == 200
    assert not Season.objects.exists()


def offered_achievements(response: Any) -> list[str]:
    """The labels the season form's achievement picker offers."""
    field = response.context["adminform"].form.fields["achievements"]
    return [label for _, label in field.choices]


def test_a_seasons_form_offers_only_its_games_achievements_by_name(
    manager: Player, game: Game, other_game: Game
) -> None:
    season = running_season(game)

    offered = offered_achievements(logged_in(manager).get(f"{SEASONS}{season.pk}/change/"))

    assert sorted(offered) == sorted(game.achievements.values_list("name", flat=True))
    assert "First Ore" not in offered


def test_a_new_season_offers_no_achievements_until_it_has_a_game(manager: Player, game: Game, other_game: Game) -> None:
    response = logged_in(manager).get(f"{SEASONS}add/")

    assert offered_achievements(response) == []
    assert "Choose the game and save" in response.content.decode()


def test_a_new_season_for_a_game_offers_only_that_games_achievements(
    manager: Player, game: Game, other_game: Game
) -> None:
    offered = offered_achievements(logged_in(manager).get(f"{SEASONS}add/?game={other_game.pk}"))

    assert offered == ["First Ore"]


def test_a_new_season_posted_with_errors_offers_its_games_achievements(
    manager: Player, game: Game, other_game: Game
) -> None:
    starts_at = datetime(2031, 3, 1, 18, 0, tzinfo=UTC)

    response = logged_in(manager).post(
        f"{SEASONS}add/", season_form(game, starts_at=starts_at, ends_at=starts_at - HOUR)
    )

    assert response.context["adminform"].form.errors
    assert sorted(offered_achievements(response)) == sorted(game.achievements.values_list("name", flat=True))


def test_the_picker_never_offers_the_achievements_of_a_game_the_user_may_not_pick(game: Game, other_game: Game) -> None:
    studio_games = Game.objects.filter(pk=game.pk)

    class ScopedToOneStudio(SeasonForm):  # as the admin scopes the game field to a studio's games
        game = forms.ModelChoiceField(queryset=studio_games)

    assert list(ScopedToOneStudio(initial={"game": other_game.pk}).fields["achievements"].queryset) == []
    assert {a.api_name for a in ScopedToOneStudio(initial={"game": game.pk}).fields["achievements"].queryset} == set(
        game.achievements.values_list("api_name", flat=True)
    )


def test_a_season_that_ends_before_it_starts_is_refused(manager: Player, game: Game) -> None:
    starts_at = datetime(2031, 3, 1, 18, 0, tzinfo=UTC)

    response = logged_in(manager).post(
        f"{SEASONS}add/", season_form(game, starts_at=starts_at, ends_at=starts_at - HOUR)
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert not Season.objects.exists()


def test_a_community_manager_runs_a_season_from_creation_to_archive(
    manager: Player, game: Game, alice: Player, bob: Player
) -> None:
    dana = make_player("dana", region="na")
    client = logged_in(manager)
    now = timezone.now().replace(microsecond=0)
    ace = achievement(game, "ACE_PILOT")
    # Create it: running since an hour ago, for a week, counting only ACE_PILOT and FIRST_FLIGHT.
    created = client.post(
        f"{SEASONS}add/",
        season_form(
            game,
            starts_at=now - HOUR,
            ends_at=now + timedelta(days=7),
            achievements=[ace.pk, achievement(game, "FIRST_FLIGHT").pk],
        ),
    )
    assert created.status_code == 302
    season = Season.objects.get()
    change_page = f"{SEASONS}{season.pk}/change/"

    # Players play; the change page shows the standings live.
    minutes = timedelta(minutes=1)
    give(alice, ace, at=now - 50 * minutes)
    give(alice, achievement(game, "FIRST_FLIGHT"), at=now - 50 * minutes)
    give(bob, ace, at=now - 40 * minutes)
    give(bob, achievement(game, "SECRET_ENDING"), at=now - 40 * minutes)  # not chosen: does not count
    live = client.get(change_page)
    assert live.status_code == 200
    assert b'name="name"' in live.content  # still editable
    assert b"2 ranked" in live.content
    assert b"<tr><td>1</td><td>alice</td><td>35</td></tr>" in live.content
    assert b"<tr><td>2</td><td>bob</td><td>25</td></tr>" in live.content
    give(dana, ace, at=now - 30 * minutes)
    assert b"3 ranked" in client.get(change_page).content

    # Close it now.
    closed = client.post(SEASONS, {"action": "close_now", "_selected_action": [str(season.pk)]}, follow=True)
    assert "Closed 1 season(s)." in [str(m) for m in closed.context["messages"]]
    season.refresh_from_db()
    assert season.closed_at is not None
    assert season.status == "closed"
    assert list(
        SeasonResult.objects.filter(season=season)
        .order_by("position")
        .values_list("player__username", "rank", "points")
    ) == [("alice", 1, 35), ("bob", 2, 25), ("dana", 2, 25)]
    action = ModerationAction.objects.get(kind=ModerationAction.Kind.CLOSE_SEASON)
    assert (action.actor, action.season, action.details["automatic"]) == (manager, season, False)

    # Archived for good: the change page is read-only and shows the final standings.
    give(dana, achievement(game, "FIRST_FLIGHT"), at=now - 20 * minutes)
    archived = client.get(change_page)
    assert archived.status_code == 200
    for field in (b'name="name"', b'name="game"', b'name="starts_at_0"', b'name="ends_at_0"', b'name="region"'):
        assert field not in archived.content
    assert b"<tr><td>2</td><td>dana</td><td>25</td></tr>" in archived.content
    client.post(change_page, season_form(game, starts_at=now, ends_at=now + HOUR, name="Renamed"))
    season.refresh_from_db()
    assert season.name == "Winter Cup"
    assert season.starts_at == now - HOUR


def test_the_season_list_shows_each_seasons_status(manager: Player, game: Game) -> None:
    running_season(game)

    response = logged_in(manager).get(SEASONS)

    assert response.status_code == 200
    assert b"Spring Cup" in response.content
    assert b'<td class="field-status_badge">running</td>' in response.content


def test_a_community_manager_reads_the_moderation_log(manager: Player, game: Game, alice: Player) -> None:
    hide_player(player=alice, actor=manager, reason="wallhack")

    response = logged_in(manager).get("/admin/leaderboards/moderationaction/")

    assert response.status_code == 200
    assert b"wallhack" in response.content


def test_a_community_manager_never_sees_a_players_email_but_a_superuser_does(manager: Player, alice: Player) -> None:
    page = f"/admin/tracker/player/{alice.pk}/change/"
    admin_user = make_player("root")
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save(update_fields=["is_staff", "is_superuser"])

    as_manager = logged_in(manager).get(page)
    as_superuser = logged_in(admin_user).get(page)

    assert as_manager.status_code == as_superuser.status_code == 200
    assert "alice" in as_manager.content.decode()
    assert "alice@example.com" not in as_manager.content.decode()
    assert "alice@example.com" in as_superuser.content.decode()


def test_a_closed_season_opens_read_only_in_the_admin(manager: Player, game: Game) -> None:
    season = running_season(game)
    close_season(season=season)
    client = logged_in(manager)

    page = client.get(f"{SEASONS}{season.pk}/change/")
    changed = client.post(
        f"{SEASONS}{season.pk}/change/", season_form(game, starts_at=season.starts_at, ends_at=season.ends_at)
    )

    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert changed.status_code == 403
    assert Season.objects.get(pk=season.pk).name == season.name


def test_the_admin_shows_one_kind_of_api_key_the_games(db: Any) -> None:
    root = make_player("root")
    root.is_staff = root.is_superuser = True
    root.save(update_fields=["is_staff", "is_superuser"])
    client = logged_in(root)

    models = {m["object_name"] for app in client.get("/admin/").context["app_list"] for m in app["models"]}

    assert "GameKey" in models
    assert "APIKey" not in models
    assert client.get("/admin/tracker/gamekey/").status_code == 200
    assert client.get("/admin/rest_framework_api_key/apikey/").status_code == 404
