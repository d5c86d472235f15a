"""Achievement types in manifests and lists, and `GET /api/v1/players/{id}/awards` under the
privacy rule of a player's other data (docs/awards.md, docs/players.md "Privacy").

The cast: dana, whose privacy each test sets (or whom moderation hid from every board);
alice, her friend; bob, a stranger; an anonymous visitor; and the keys of Quest, where dana
beat and mastered the game, and of Moon Miners, which she mastered too."""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from achievements.models import Achievement, Source
from achievements.services import import_manifest, unlock_achievement
from leaderboards.services import hide_player
from tests.conftest import MOON_MINERS, Api, make_player
from tests.helpers import assert_error
from tests.test_friends import befriend
from tracker.models import Game, Player, Privacy
from tracker.services import game_key_create

pytestmark = pytest.mark.django_db

QUEST = {
    "slug": "quest",
    "name": "Quest",
    "achievements": [
        {"api_name": "CHAPTER_1", "name": "Chapter One", "points": 10, "type": "progression"},
        {"api_name": "THE_END", "name": "The End", "points": 50, "type": "win_condition"},
        {"api_name": "ALL_GEMS", "name": "Every Gem", "points": 25, "type": "missable"},
        {"api_name": "PET_CAT", "name": "Pet the Cat", "points": 5},
    ],
}


def awards_url(player: Player | uuid.UUID, query: str = "") -> str:
    player_id = player.pk if isinstance(player, Player) else player
    return f"/api/v1/players/{player_id}/awards{query}"


def give(player: Player, game: Game, api_name: str, at: datetime) -> None:
    achievement = game.achievements.get(api_name=api_name)
    unlock_achievement(player=player, achievement=achievement, source=Source.GAME_SERVER, at=at)


@pytest.fixture
def quest(db: Any) -> Game:
    return import_manifest(manifest=QUEST).game


@pytest.fixture
def start() -> datetime:
    return timezone.now() - timedelta(days=3)


def play_through(player: Player, quest: Game, start: datetime) -> None:
    """Beaten at start + 1 h (the last of progression and a win), mastered at + 3 h."""
    for hours, api_name in enumerate(["CHAPTER_1", "THE_END", "ALL_GEMS", "PET_CAT"]):
        give(player, quest, api_name, start + timedelta(hours=hours))


# --- The endpoint --------------------------------------------------------------------------------


def test_a_players_awards_are_listed_newest_first_with_their_games(
    api: Api, alice: Player, quest: Game, other_game: Game, start: datetime
) -> None:
    play_through(alice, quest, start)
    give(alice, other_game, "FIRST_ORE", start + timedelta(days=1))

    response = api.anonymous().get(awards_url(alice))

    assert response.status_code == 200, response.content
    game = {"id": str(quest.pk), "slug": "quest", "name": "Quest"}
    moon = {"id": str(other_game.pk), "slug": "moon-miners", "name": "Moon Miners"}
    assert response.json() == {
        "results": [
            {"kind": "mastered", "game": moon, "awarded_at": (start + timedelta(days=1)).isoformat()},
            {"kind": "mastered", "game": game, "awarded_at": (start + timedelta(hours=3)).isoformat()},
            {"kind": "beaten", "game": game, "awarded_at": (start + timedelta(hours=1)).isoformat()},
        ]
    }


def test_the_list_can_be_limited_to_one_game(api: Api, alice: Player, quest: Game, other_game: Game) -> None:
    play_through(alice, quest, timezone.now())
    give(alice, other_game, "FIRST_ORE", timezone.now())

    response = api.anonymous().get(awards_url(alice, "?game=moon-miners"))

    assert [(a["kind"], a["game"]["slug"]) for a in response.json()["results"]] == [("mastered", "moon-miners")]


def test_a_player_with_no_awards_has_an_empty_list_and_an_unknown_id_is_a_404(api: Api, alice: Player) -> None:
    assert api.anonymous().get(awards_url(alice)).json() == {"results": []}
    assert_error(api.anonymous().get(awards_url(uuid.uuid4())), 404, "not_found")


def test_the_list_costs_the_same_queries_however_many_awards(
    api: Api, alice: Player, bob: Player, quest: Game, other_game: Game
) -> None:
    give(alice, other_game, "FIRST_ORE", timezone.now())
    play_through(bob, quest, timezone.now())
    give(bob, other_game, "FIRST_ORE", timezone.now())
    client = api.anonymous()

    with CaptureQueriesContext(connection) as one:
        assert len(client.get(awards_url(alice)).json()["results"]) == 1
    with CaptureQueriesContext(connection) as three:
        assert len(client.get(awards_url(bob)).json()["results"]) == 3

    assert len(three) == len(one)


# --- Privacy: the rule of a player's other data ------------------------------------------------

VIEWERS = ["anonymous", "stranger", "friend", "owner", "key", "other key"]
# Who sees dana's awards, by her privacy ("blocked": public, hidden by moderation, which
# takes her off boards, not out of her own profile); the game keys see a hidden player's
# awards in their own game only.
SEES = {
    Privacy.PUBLIC: {"anonymous", "stranger", "friend", "owner", "key", "other key"},
    "blocked": {"anonymous", "stranger", "friend", "owner", "key", "other key"},
    Privacy.FRIENDS: {"friend", "owner"},
    Privacy.PRIVATE: {"owner"},
}


@dataclass(frozen=True)
class Cast:
    dana: Player
    alice: Player
    bob: Player
    key: str  # Quest's
    other_key: str  # Moon Miners'

    def client(self, viewer: str) -> APIClient:
        api = Api()
        return {
            "anonymous": api.anonymous,
            "stranger": lambda: api.as_player(self.bob),
            "friend": lambda: api.as_player(self.alice),
            "owner": lambda: api.as_player(self.dana),
            "key": lambda: api.as_key(self.key),
            "other key": lambda: api.as_key(self.other_key),
        }[viewer]()


@pytest.fixture(params=[Privacy.PUBLIC, Privacy.FRIENDS, Privacy.PRIVATE, "blocked"])
def privacy(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def cast(privacy: str, alice: Player, bob: Player, quest: Game, other_game: Game) -> Cast:
    dana = make_player("dana", privacy=Privacy.PUBLIC if privacy == "blocked" else privacy)
    befriend(alice, dana)
    play_through(dana, quest, timezone.now() - timedelta(days=1))
    give(dana, other_game, "FIRST_ORE", timezone.now())
    if privacy == "blocked":
        hide_player(player=dana, actor=None, reason="cheating")
    return Cast(dana, alice, bob, game_key_create(game=quest), game_key_create(game=other_game))


@pytest.mark.parametrize("viewer", VIEWERS)
def test_the_awards_answer_exactly_whom_may_see_the_players_data(cast: Cast, privacy: str, viewer: str) -> None:
    response = cast.client(viewer).get(awards_url(cast.dana))

    if viewer in SEES[privacy]:
        assert response.status_code == 200, response.content
        slugs = {award["game"]["slug"] for award in response.json()["results"]}
        assert slugs == {"quest", "moon-miners"}
    elif viewer.endswith("key"):
        # A key sees a hidden player's awards in its own game only.
        assert response.status_code == 200, response.content
        own = "quest" if viewer == "key" else "moon-miners"
        assert {award["game"]["slug"] for award in response.json()["results"]} == {own}
    else:
        assert_error(response, 403, "forbidden")


@pytest.mark.parametrize("privacy", [Privacy.PRIVATE, Privacy.FRIENDS])
def test_a_key_asking_about_a_hidden_player_its_game_never_saw_gets_the_404_of_no_one(
    api: Api, quest: Game, other_game: Game, privacy: str
) -> None:
    carol = make_player("carol", privacy=privacy)
    give(carol, other_game, "FIRST_ORE", timezone.now())  # she exists, elsewhere, with an award
    client = api.as_key(game_key_create(game=quest))

    no_one = uuid.uuid4()

    about_carol = client.get(awards_url(carol))
    about_no_one = client.get(awards_url(no_one))

    assert_error(about_carol, 404, "not_found")
    assert about_carol.content.decode().replace(str(carol.pk), "<id>") == about_no_one.content.decode().replace(
        str(no_one), "<id>"
    )


def test_a_key_may_not_ask_about_a_hidden_players_awards_in_another_game(
    api: Api, charlie: Player, quest: Game, other_game: Game
) -> None:
    play_through(charlie, quest, timezone.now())
    client = api.as_key(game_key_create(game=quest))

    assert_error(client.get(awards_url(charlie, "?game=moon-miners")), 403, "forbidden")
    assert len(client.get(awards_url(charlie, "?game=quest")).json()["results"]) == 2


# --- Types in manifests and wherever achievements are served ----------------------------------


def put_manifest(api: Api, game: Game, document: dict[str, Any]) -> Any:
    return api.as_key(game_key_create(game=game)).put(f"/api/v1/games/{game.pk}/achievements", document, format="json")


def test_a_manifest_gives_types_and_every_achievement_list_serves_them(api: Api, alice: Player, quest: Game) -> None:
    give(alice, quest, "THE_END", timezone.now())

    listed = api.anonymous().get(f"/api/v1/games/{quest.slug}/achievements").json()["achievements"]
    held = api.anonymous().get(f"/api/v1/players/{alice.pk}/achievements").json()["achievements"]

    assert {a["api_name"]: a["type"] for a in listed} == {
        "CHAPTER_1": "progression",
        "THE_END": "win_condition",
        "ALL_GEMS": "missable",
        "PET_CAT": None,
    }
    assert [(a["api_name"], a["type"]) for a in held] == [("THE_END", "win_condition")]


def test_an_unknown_type_is_a_400_naming_the_field_and_changes_nothing(api: Api, quest: Game) -> None:
    document = {**QUEST, "achievements": [{**QUEST["achievements"][0], "type": "boss_fight"}]}

    response = put_manifest(api, quest, document)

    error = assert_error(response, 400, "invalid")
    assert error["fields"] == {"achievements": {"0": {"type": ['"boss_fight" is not a valid choice.']}}}
    assert Achievement.objects.get(game=quest, api_name="CHAPTER_1").type == "progression"


def test_a_type_left_out_is_kept_and_a_null_one_is_cleared(api: Api, quest: Game) -> None:
    items = [dict(item) for item in QUEST["achievements"]]
    del items[0]["type"]
    items[1]["type"] = None

    assert put_manifest(api, quest, {**QUEST, "achievements": items}).status_code == 200

    types = dict(quest.achievements.values_list("api_name", "type"))
    assert (types["CHAPTER_1"], types["THE_END"]) == ("progression", "")
    quest.refresh_from_db()
    assert (quest.progression_count, quest.win_condition_count) == (1, 0)


def test_the_import_command_takes_types_too(tmp_path: Path, db: Any) -> None:
    path = tmp_path / "quest.json"
    path.write_text(json.dumps(QUEST))

    call_command("import_game", str(path), stdout=io.StringIO())

    game = Game.objects.get(slug="quest")
    assert (game.progression_count, game.win_condition_count) == (1, 1)
    assert dict(game.achievements.values_list("api_name", "type"))["ALL_GEMS"] == "missable"


def test_an_untyped_manifest_of_before_still_imports(db: Any) -> None:
    game = import_manifest(manifest=MOON_MINERS).game

    assert list(game.achievements.values_list("type", flat=True)) == [""]
