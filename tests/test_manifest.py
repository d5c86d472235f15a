"""Achievement sets: the `import_game` and `create_game_key` commands and PUT /api/v1/games/{id}/achievements."""

from __future__ import annotations

import copy
import uuid
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from achievements.models import Achievement
from achievements.services import import_manifest
from tests.conftest import STAR_RAIDERS, Api, achievement
from tests.helpers import assert_error, give, manifest, snapshot, stats, unlock, write_manifest
from tracker.models import Game, GameKey, Player


def run(command: str, *args: Any) -> list[str]:
    out = StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue().strip().splitlines()


def star_raiders(**changes: Any) -> dict[str, Any]:
    """A copy of the star-raiders manifest, to edit."""
    document = copy.deepcopy(STAR_RAIDERS)
    document.update(changes)
    return document


def achievements_url(game: Game) -> str:
    return f"/api/v1/games/{game.pk}/achievements"


# --- import_game -------------------------------------------------------------------------


def test_import_game_creates_the_game_and_prints_its_id_last(db: Any, tmp_path: Path) -> None:
    document = {
        "slug": "deep-sea",
        "name": "Deep Sea",
        "achievements": [
            {"api_name": "DIVE", "name": "Dive", "points": 5},
            {
                "api_name": "ABYSS",
                "name": "Abyss",
                "description": "Reach the bottom.",
                "points": 40,
                "hidden": True,
                "client_unlockable": True,
                "progress_target": 11000,
            },
        ],
    }

    lines = run("import_game", str(write_manifest(tmp_path, document)))

    game = Game.objects.get(slug="deep-sea")
    assert lines[-1] == str(game.pk)
    assert (game.name, game.achievement_count, game.total_points) == ("Deep Sea", 2, 45)
    dive, abyss = Achievement.objects.filter(game=game).order_by("position")
    assert (dive.api_name, dive.points, dive.hidden, dive.client_unlockable, dive.progress_target) == (
        "DIVE",
        5,
        False,
        False,
        None,
    )
    assert (abyss.api_name, abyss.description, abyss.hidden, abyss.client_unlockable, abyss.progress_target) == (
        "ABYSS",
        "Reach the bottom.",
        True,
        True,
        11000,
    )


def test_reimporting_a_manifest_updates_in_place_without_duplicates(db: Any, tmp_path: Path) -> None:
    first = run("import_game", str(write_manifest(tmp_path, STAR_RAIDERS)))
    ids = dict(Achievement.objects.values_list("api_name", "id"))
    edited = star_raiders(name="Star Raiders II")
    edited["achievements"][1].update(name="Top Gun", description="Shoot down 50 raiders.")

    second = run("import_game", str(write_manifest(tmp_path, edited)))

    assert second[-1] == first[-1]
    assert Game.objects.count() == 1
    assert dict(Achievement.objects.values_list("api_name", "id")) == ids
    ace = Achievement.objects.get(api_name="ACE_PILOT")
    assert (ace.name, ace.description, ace.points) == ("Top Gun", "Shoot down 50 raiders.", 25)
    assert Game.objects.get().name == "Star Raiders II"


def test_importing_the_same_manifest_twice_changes_nothing(db: Any, tmp_path: Path) -> None:
    path = write_manifest(tmp_path, STAR_RAIDERS)
    run("import_game", str(path))
    before = snapshot()

    run("import_game", str(path))

    assert snapshot() == before


@pytest.mark.parametrize(
    "document",
    [
        {"name": "No slug", "achievements": []},
        {"slug": "bad", "name": "Bad", "achievements": [{"api_name": "X", "name": "No points"}]},
        {"slug": "bad", "name": "Bad", "achievements": [{"api_name": "X", "name": "Too many", "points": 1001}]},
        {"slug": "bad", "name": "Bad", "achievements": [{"api_name": "X", "name": "X", "points": 1, "typo": 1}]},
        ["not", "an", "object"],
    ],
    ids=["missing-slug", "missing-points", "points-over-1000", "unknown-field", "not-an-object"],
)
def test_import_game_rejects_an_invalid_manifest(db: Any, tmp_path: Path, document: Any) -> None:
    with pytest.raises(CommandError, match="Invalid manifest"):
        run("import_game", str(write_manifest(tmp_path, document)))

    assert not Game.objects.exists()


def test_import_game_rejects_a_file_that_is_not_json(db: Any, tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json")

    with pytest.raises(CommandError, match="Cannot read"):
        run("import_game", str(path))


def test_import_game_refuses_to_change_points_somebody_has_earned(alice: Player, game: Game, tmp_path: Path) -> None:
    give(alice, achievement(game, "ACE_PILOT"))
    edited = star_raiders()
    edited["achievements"][1]["points"] = 99
    edited["achievements"][0]["name"] = "Renamed"
    before = snapshot()

    with pytest.raises(CommandError, match="ACE_PILOT"):
        run("import_game", str(write_manifest(tmp_path, edited)))

    assert snapshot() == before


# --- create_game_key ---------------------------------------------------------------------


def test_create_game_key_prints_a_raw_key_that_authenticates(api: Api, alice: Player, game: Game) -> None:
    lines = run("create_game_key", "star-raiders")

    raw = lines[-1]
    assert raw.strip() == raw and " " not in raw
    response = unlock(api.as_key(raw), alice, achievement(game, "ACE_PILOT"))
    assert response.status_code == 201, response.content


def test_create_game_key_stores_only_a_hash(game: Game) -> None:
    raw = run("create_game_key", "star-raiders")[-1]

    key = GameKey.objects.get(game=game)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(GameKey._meta.db_table)} WHERE id = %s", [key.pk])
        row = cursor.fetchone()
    assert row is not None
    _, _, secret = raw.partition(".")
    assert all(raw not in str(value) and secret not in str(value) for value in row)


def test_create_game_key_for_an_unknown_game_fails(db: Any) -> None:
    with pytest.raises(CommandError, match="no-such-game"):
        run("create_game_key", "no-such-game")

    assert not GameKey.objects.exists()


# --- PUT /api/v1/games/{game_id}/achievements ---------------------------------------------


def test_a_game_key_updates_its_own_achievement_set(api: Api, game: Game, game_key: str) -> None:
    ids = dict(game.achievements.values_list("api_name", "id"))
    edited = star_raiders()
    edited["achievements"][0]["description"] = "Take off for the first time."
    edited["achievements"].append({"api_name": "BOSS", "name": "Boss", "points": 100})

    response = api.as_key(game_key).put(achievements_url(game), edited, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {
        "game_id": str(game.pk),
        "slug": "star-raiders",
        "created": 1,
        "updated": 1,
        "achievement_count": 5,
    }
    assert {k: v for k, v in game.achievements.values_list("api_name", "id") if k != "BOSS"} == ids
    assert achievement(game, "FIRST_FLIGHT").description == "Take off for the first time."
    assert achievement(game, "BOSS").points == 100
    game.refresh_from_db()
    assert (game.achievement_count, game.total_points) == (5, 200)


def test_the_set_may_be_addressed_by_the_games_slug(api: Api, game: Game, game_key: str) -> None:
    edited = star_raiders(name="Star Raiders Remastered")

    response = api.as_key(game_key).put("/api/v1/games/star-raiders/achievements", edited, format="json")

    assert response.status_code == 200, response.content
    game.refresh_from_db()
    assert game.name == "Star Raiders Remastered"


def test_another_games_key_cannot_change_the_set(api: Api, game: Game, other_game_key: str) -> None:
    before = snapshot()

    response = api.as_key(other_game_key).put(achievements_url(game), star_raiders(name="Hijacked"), format="json")

    assert_error(response, 403, "forbidden")
    assert snapshot() == before


def test_a_player_token_cannot_change_the_set(api: Api, alice: Player, game: Game) -> None:
    before = snapshot()

    response = api.as_player(alice).put(achievements_url(game), star_raiders(name="Hijacked"), format="json")

    assert_error(response, 403, "forbidden")
    assert snapshot() == before


def test_an_anonymous_caller_cannot_change_the_set(api: Api, game: Game) -> None:
    before = snapshot()

    response = api.anonymous().put(achievements_url(game), star_raiders(name="Hijacked"), format="json")

    assert_error(response, 401)
    assert response["WWW-Authenticate"]
    assert snapshot() == before


def test_a_manifest_for_another_slug_is_rejected(api: Api, game: Game, game_key: str) -> None:
    before = snapshot()

    response = api.as_key(game_key).put(achievements_url(game), star_raiders(slug="moon-miners"), format="json")

    error = assert_error(response, 400, "invalid")
    assert "slug" in error["fields"]
    assert snapshot() == before


def test_a_manifest_naming_another_games_slug_changes_neither_game(
    api: Api, game: Game, other_game: Game, game_key: str
) -> None:
    before = snapshot()

    response = api.as_key(game_key).put(achievements_url(game), star_raiders(slug=other_game.slug), format="json")

    error = assert_error(response, 400, "invalid")
    assert error["fields"] == {"slug": [f"Expected '{game.slug}'."]}
    assert snapshot() == before
    assert set(other_game.achievements.values_list("api_name", flat=True)) == {"FIRST_ORE"}


def test_a_manifest_with_a_duplicate_api_name_is_rejected(api: Api, game: Game, game_key: str) -> None:
    edited = star_raiders()
    edited["achievements"].append({"api_name": "ACE_PILOT", "name": "Ace Pilot again", "points": 1})
    before = snapshot()

    response = api.as_key(game_key).put(achievements_url(game), edited, format="json")

    error = assert_error(response, 400, "invalid")
    assert "achievements" in error["fields"]
    assert "ACE_PILOT" in error["message"]
    assert snapshot() == before


def test_a_progress_target_no_report_could_reach_is_rejected(api: Api, game: Game, game_key: str) -> None:
    edited = star_raiders()
    edited["achievements"].append({"api_name": "KILL_ALL", "name": "Everyone", "points": 1, "progress_target": 2**40})
    before = snapshot()

    response = api.as_key(game_key).put(achievements_url(game), edited, format="json")

    error = assert_error(response, 400, "invalid")
    assert "progress_target" in str(error["fields"])
    assert snapshot() == before


def test_changing_points_somebody_has_earned_is_a_conflict_and_changes_nothing(
    api: Api, alice: Player, game: Game, game_key: str
) -> None:
    give(alice, achievement(game, "ACE_PILOT"))
    edited = star_raiders(name="Renamed")
    edited["achievements"][1]["points"] = 30
    edited["achievements"].append({"api_name": "BOSS", "name": "Boss", "points": 100})
    before = snapshot()

    response = api.as_key(game_key).put(achievements_url(game), edited, format="json")

    error = assert_error(response, 409, "conflict")
    assert "ACE_PILOT" in error["message"]
    assert snapshot() == before


def test_points_nobody_has_earned_may_change(api: Api, alice: Player, game: Game, game_key: str) -> None:
    give(alice, achievement(game, "FIRST_FLIGHT"))
    edited = star_raiders()
    edited["achievements"][1]["points"] = 30

    response = api.as_key(game_key).put(achievements_url(game), edited, format="json")

    assert response.status_code == 200, response.content
    assert achievement(game, "ACE_PILOT").points == 30
    game.refresh_from_db()
    assert game.total_points == 105
    assert stats(alice, game) == (10, 1, 25.0)


def test_adding_an_achievement_lowers_every_players_completion(
    api: Api, alice: Player, bob: Player, game: Game, game_key: str, django_capture_on_commit_callbacks: Any
) -> None:
    give(alice, achievement(game, "FIRST_FLIGHT"))
    give(bob, achievement(game, "FIRST_FLIGHT"))
    give(bob, achievement(game, "ACE_PILOT"))
    assert (stats(alice, game), stats(bob, game)) == ((10, 1, 25.0), (35, 2, 50.0))
    edited = star_raiders()
    edited["achievements"].append({"api_name": "BOSS", "name": "Boss", "points": 100})

    with django_capture_on_commit_callbacks(execute=True):  # the recompute runs after commit
        response = api.as_key(game_key).put(achievements_url(game), edited, format="json")

    assert response.status_code == 200, response.content
    assert (stats(alice, game), stats(bob, game)) == ((10, 1, 20.0), (35, 2, 40.0))


def test_a_recompute_lost_to_a_broker_outage_is_caught_up(alice: Player, game: Game) -> None:
    from stats.tasks import refresh_stale_completion

    give(alice, achievement(game, "FIRST_FLIGHT"))
    manifest = star_raiders()
    manifest["achievements"].append({"api_name": "BOSS", "name": "Boss", "points": 100})
    import_manifest(manifest=manifest)  # its after-commit recompute never runs here
    assert stats(alice, game) == (10, 1, 25.0)

    assert refresh_stale_completion() == 1

    assert stats(alice, game) == (10, 1, 20.0)
    assert refresh_stale_completion() == 0


def test_unlocks_after_the_set_grew_use_the_new_size(api: Api, alice: Player, game: Game, game_key: str) -> None:
    api.as_key(game_key).put(achievements_url(game), manifest("star-raiders", 10, name="Star Raiders"), format="json")

    unlock(api.as_key(game_key), alice, achievement(game, "A00"))

    # The four original achievements are kept (players may hold them), so the set has 14.
    assert stats(alice, game) == (10, 1, pytest.approx(100 / 14))


def test_put_to_an_unknown_game_is_404(api: Api, game_key: str) -> None:
    before = snapshot()

    response = api.as_key(game_key).put(f"/api/v1/games/{uuid.uuid4()}/achievements", STAR_RAIDERS, format="json")

    assert_error(response, 404, "not_found")
    assert snapshot() == before
