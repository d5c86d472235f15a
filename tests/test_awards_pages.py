"""Awards and achievement types on the player's site: the profile lists the player's awards,
the game page counts who beat and mastered the game and names the first ten to master it
under the naming rules of boards, and achievement lists label each type."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from achievements.services import import_manifest
from leaderboards.services import hide_player
from tests.conftest import make_player
from tests.helpers import logged_in
from tests.test_awards_api import QUEST, give, play_through
from tests.test_player_pages import parse, text
from tracker.models import Game, Player, Privacy

pytestmark = pytest.mark.django_db

ANONYMOUS = "Anonymous player"


@pytest.fixture
def quest(db: Any) -> Game:
    return import_manifest(manifest=QUEST).game


def test_the_profile_lists_the_players_awards_newest_first(alice: Player, quest: Game) -> None:
    start = timezone.now() - timedelta(days=2)
    play_through(alice, quest, start)

    page = parse(Client().get("/players/alice/"))

    assert "Awards Mastered Quest" in page.text and "Beaten Quest" in page.text
    assert page.text.index("Mastered Quest") < page.text.index("Beaten Quest")
    assert "/players/alice/games/quest/" in page.links


def test_a_profile_without_awards_says_so(alice: Player) -> None:
    assert "No game beaten or mastered yet." in text(Client().get("/players/alice/"))


@pytest.fixture
def masters(quest: Game, alice: Player, bob: Player, charlie: Player) -> None:
    """charlie (private) mastered Quest first, alice second; bob only beat it; dana
    mastered it but moderation hid her from every board."""
    start = timezone.now() - timedelta(days=5)
    play_through(charlie, quest, start)
    play_through(alice, quest, start + timedelta(days=1))
    give(bob, quest, "CHAPTER_1", start)
    give(bob, quest, "THE_END", start)
    dana = make_player("dana")
    play_through(dana, quest, start - timedelta(days=1))
    hide_player(player=dana, actor=None, reason="cheating")


@pytest.mark.usefixtures("masters")
def test_the_game_page_counts_who_beat_and_mastered_it_and_names_the_first_masters_it_may(bob: Player) -> None:
    page = parse(logged_in(bob).get("/games/quest/"))

    assert "3 beat it · 2 mastered it" in page.text
    first = page.text[page.text.index("First to master") :]
    assert first.startswith(f"First to master # Player Mastered 1 {ANONYMOUS}")
    assert " 2 alice " in first
    assert "dana" not in page.text
    assert "/players/alice/" in page.links and "/players/charlie/" not in page.links


@pytest.mark.usefixtures("masters")
def test_a_private_master_sees_their_own_name_on_the_game_page(charlie: Player) -> None:
    page = parse(logged_in(charlie).get("/games/quest/"))

    assert "First to master # Player Mastered 1 charlie" in page.text
    assert ANONYMOUS not in page.text[page.text.index("First to master") :]


def test_a_game_nobody_mastered_says_so(quest: Game) -> None:
    page = text(Client().get("/games/quest/"))

    assert "0 beat it · 0 mastered it" in page
    assert "Nobody has mastered it yet." in page


def test_the_game_page_costs_the_same_queries_for_one_master_or_ten(quest: Game) -> None:
    start = timezone.now() - timedelta(days=1)
    players = [make_player(f"p{i}", privacy=[Privacy.FRIENDS, Privacy.PUBLIC][i % 2]) for i in range(10)]
    play_through(players[0], quest, start)
    viewer = logged_in(players[1])
    with CaptureQueriesContext(connection) as one:
        viewer.get("/games/quest/")
    for player in players[1:]:
        play_through(player, quest, start)

    with CaptureQueriesContext(connection) as ten:
        page = text(viewer.get("/games/quest/"))

    assert "10 beat it · 10 mastered it" in page
    assert len(ten) == len(one)


def test_achievement_lists_label_each_type(alice: Player, quest: Game) -> None:
    give(alice, quest, "THE_END", timezone.now())

    for page in (text(Client().get("/games/quest/")), text(Client().get("/players/alice/games/quest/"))):
        assert "Chapter One Progression" in page
        assert "The End Win condition" in page
        assert "Every Gem Missable" in page
        assert "Pet the Cat Progression" not in page and "Pet the Cat Win" not in page


def test_a_players_game_page_shows_their_awards_in_it(alice: Player, quest: Game) -> None:
    start = timezone.now() - timedelta(days=2)
    give(alice, quest, "CHAPTER_1", start)
    give(alice, quest, "THE_END", start)

    page = text(Client().get("/players/alice/games/quest/"))

    assert f"Beaten {start:%b} {start.day}, {start.year}" in page
    assert "Mastered" not in page


def test_pages_of_a_player_the_viewer_may_not_see_show_no_awards(charlie: Player, quest: Game, db: Any) -> None:
    play_through(charlie, quest, timezone.now())

    assert parse(Client().get("/players/charlie/"), 403).text.count("Mastered") == 0
