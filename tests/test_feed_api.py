"""The friends' feed over the API (`GET /api/v1/feed`, docs/feed.md): who may read it, what
each kind of item says, newest first, hidden achievements masked, the page size and the
cursor.

The cast: alice reads her feed; bob is her friend; eve is nobody's friend. Their game is
Feed Quest, thirty achievements (nobody here holds them all, so no award is granted by
the unlock path behind a test's back: the awards a test needs it records itself).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIClient

from achievements.models import Award, Source
from achievements.services import UnlockRequest, import_manifest, save_season, unlock_achievements
from leaderboards.services import close_season
from tests.conftest import Api, achievement, make_player
from tests.helpers import assert_error, give
from tests.test_friends import befriend
from tracker.models import Friendship, Game, Notification, Player

pytestmark = pytest.mark.django_db

FEED_URL = "/api/v1/feed"
FEED_QUEST = {
    "slug": "feed-quest",
    "name": "Feed Quest",
    "achievements": [
        {"api_name": "SECRET", "name": "The Hidden Door", "description": "Found it.", "points": 40, "hidden": True},
        *({"api_name": f"A{i:02d}", "name": f"Step {i}", "points": 5 + i} for i in range(29)),
    ],
}


@pytest.fixture
def quest(db: Any) -> Game:
    return import_manifest(manifest=FEED_QUEST).game


@pytest.fixture
def friends(alice: Player, bob: Player) -> None:
    befriend(alice, bob)


def read(client: APIClient, **query: Any) -> Response:
    return client.get(FEED_URL, query)


def feed_of(api: Api, player: Player, **query: Any) -> dict[str, Any]:
    response = read(api.as_player(player), **query)
    assert response.status_code == 200, response.content
    return response.json()


def ago(hours: float) -> datetime:
    return timezone.now() - timedelta(hours=hours)


def step(game: Game, i: int) -> Any:
    return achievement(game, f"A{i:02d}")


def award(player: Player, game: Game, kind: str, at: datetime) -> Award:
    """An award as the unlock path records it (another part of the code grants them)."""
    return Award.objects.create(player=player, game=game, kind=kind, awarded_at=at)


def passed(viewer: Player, rival: Player, game: Game, at: datetime, points: tuple[int, int] = (30, 20)) -> Notification:
    """A rival alert as `leaderboards.live.notify_rivals` records it, at `at`."""
    alert = Notification.objects.create(
        player=viewer,
        kind=Notification.Kind.RIVAL,
        payload={
            "game_id": str(game.pk),
            "game_name": game.name,
            "game_slug": game.slug,
            "rival_id": str(rival.pk),
            "rival_username": rival.username,
            "rival_points": points[0],
            "your_points": points[1],
        },
    )
    Notification.objects.filter(pk=alert.pk).update(created=at)
    return alert


def kinds(page: dict[str, Any]) -> list[str]:
    return [item["kind"] for item in page["results"]]


# --- Who may read it ----------------------------------------------------------------------


def test_nobody_signed_in_gets_401_in_the_one_error_shape(api: Api) -> None:
    assert_error(read(api.anonymous()), 401, "not_authenticated")


def test_a_game_key_gets_403_it_has_no_friends(api: Api, game_key: str) -> None:
    assert_error(read(api.as_key(game_key)), 403, "forbidden")


def test_a_signed_in_browser_reads_it_with_its_session(alice: Player, bob: Player, friends: None, quest: Game) -> None:
    give(bob, step(quest, 1))
    browser = APIClient()
    browser.force_login(alice)

    response = browser.get(FEED_URL)

    assert response.status_code == 200, response.content
    assert kinds(response.json()) == ["unlock"]


# --- What it lists ------------------------------------------------------------------------


def test_each_kind_of_a_friends_activity_is_listed_newest_first(
    api: Api, alice: Player, bob: Player, friends: None, quest: Game
) -> None:
    season = save_season(game=quest, name="Autumn Cup", starts_at=ago(10), ends_at=ago(5))
    give(bob, step(quest, 3), at=ago(6))  # inside the season: bob wins it with 8 points
    award(bob, quest, Award.Kind.BEATEN, ago(3))
    passed(alice, bob, quest, ago(2), points=(8, 7))
    closed_at = ago(1)
    close_season(season=season, now=closed_at)

    page = feed_of(api, alice)

    player = {"id": str(bob.pk), "username": "bob"}
    game = {"id": str(quest.pk), "slug": "feed-quest", "name": "Feed Quest"}
    finish, alert, beaten, unlocked = page["results"]
    assert page["next"] is None
    assert finish == {
        "kind": "season_finish",
        "at": closed_at.isoformat().replace("+00:00", "Z"),
        "player": player,
        "game": game,
        "season": {"id": str(season.pk), "name": "Autumn Cup"},
        "rank": 1,
        "points": 8,
    }
    assert alert == {
        "kind": "passed",
        "at": alert["at"],
        "player": player,
        "game": game,
        "points": 8,
        "your_points": 7,
    }
    assert beaten == {"kind": "award", "at": beaten["at"], "player": player, "game": game, "award": "beaten"}
    assert unlocked["kind"] == "unlock" and (unlocked["player"], unlocked["game"]) == (player, game)
    assert unlocked["achievement"]["id"] == str(step(quest, 3).pk)
    assert (unlocked["achievement"]["name"], unlocked["achievement"]["points"]) == ("Step 3", 8)
    times = [datetime.fromisoformat(item["at"]) for item in page["results"]]
    assert times == sorted(times, reverse=True)


def test_a_season_finish_below_the_top_ten_is_not_news(
    api: Api, alice: Player, bob: Player, friends: None, quest: Game
) -> None:
    season = save_season(game=quest, name="Crowded Cup", starts_at=ago(10), ends_at=ago(5))
    for i in range(10):
        give(make_player(f"ahead{i}"), step(quest, 28), at=ago(6))  # ten players with 33 points
    give(bob, step(quest, 0), at=ago(6))  # bob: 5 points, 11th
    close_season(season=season, now=ago(1))

    assert kinds(feed_of(api, alice)) == ["unlock"]


def test_only_accepted_friends_activity_is_in_it(
    api: Api, alice: Player, bob: Player, quest: Game, django_capture_on_commit_callbacks: Any
) -> None:
    eve = make_player("eve")
    Friendship.objects.create(requester=alice, addressee=eve)  # pending, never accepted
    for player in (bob, eve, alice):
        give(player, step(quest, 1))
        award(player, quest, Award.Kind.BEATEN, ago(1))

    assert feed_of(api, alice)["results"] == []  # no friends yet: not even her own activity

    with django_capture_on_commit_callbacks(execute=True):  # as it would commit
        befriend(bob, alice)
    assert {item["player"]["username"] for item in feed_of(api, alice)["results"]} == {"bob"}


def test_a_friends_hidden_achievement_is_masked_until_i_unlock_it_myself(
    api: Api, alice: Player, bob: Player, friends: None, quest: Game, django_capture_on_commit_callbacks: Any
) -> None:
    give(bob, achievement(quest, "SECRET"), at=ago(2))

    [masked] = feed_of(api, alice)["results"]
    with django_capture_on_commit_callbacks(execute=True):  # committed and relayed
        give(alice, achievement(quest, "SECRET"), at=ago(1))
    seen = [item for item in feed_of(api, alice)["results"] if item["kind"] == "unlock"]

    shown = masked["achievement"]
    assert shown["id"] == str(achievement(quest, "SECRET").pk)
    assert (shown["name"], shown["api_name"], shown["description"], shown["icon"]) == (
        "Hidden achievement",
        None,
        "",
        "",
    )
    # Its points stay visible, as everywhere (docs/players.md, "Hidden achievements").
    assert (shown["points"], shown["hidden"]) == (40, True)
    [revealed] = seen
    assert (revealed["achievement"]["name"], revealed["achievement"]["api_name"]) == ("The Hidden Door", "SECRET")


# --- Pages --------------------------------------------------------------------------------


@pytest.fixture
def busy_friend(alice: Player, bob: Player, friends: None, quest: Game) -> list[int]:
    """bob's 25 unlocks, an hour apart: the newest is step 24."""
    for i in range(25):
        give(bob, step(quest, i), at=ago(25 - i))
    return list(range(24, -1, -1))


def steps(page: dict[str, Any]) -> list[int]:
    return [int(item["achievement"]["name"].removeprefix("Step ")) for item in page["results"]]


def test_a_page_holds_20_items_by_default_and_up_to_100(api: Api, alice: Player, busy_friend: list[int]) -> None:
    first = feed_of(api, alice)
    whole = feed_of(api, alice, limit=100)

    assert steps(first) == busy_friend[:20] and first["next"]
    assert steps(whole) == busy_friend and whole["next"] is None
    assert steps(feed_of(api, alice, limit=1)) == busy_friend[:1]


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten", "1.5", ""])
def test_a_limit_outside_1_to_100_is_a_400_naming_it(api: Api, alice: Player, limit: str) -> None:
    error = assert_error(read(api.as_player(alice), limit=limit), 400, "invalid")

    assert set(error["fields"]) == {"limit"}


def test_following_next_lists_every_item_once_in_order(api: Api, alice: Player, busy_friend: list[int]) -> None:
    seen, cursor = [], None
    while True:
        page = feed_of(api, alice, limit=7, **({"cursor": cursor} if cursor else {}))
        seen += steps(page)
        cursor = page["next"]
        if cursor is None:
            break

    assert seen == busy_friend


def test_items_at_the_same_moment_are_ordered_by_kind_then_id_and_split_across_pages(
    api: Api, alice: Player, bob: Player, friends: None, quest: Game
) -> None:
    """A batch unlock records all its items at one moment: the cursor's kind and id keep
    pages apart within it."""
    moment = ago(1)
    unlock_achievements(
        [UnlockRequest(bob.pk, step(quest, i), None) for i in range(5)], source=Source.GAME_SERVER, at=moment
    )
    award(bob, quest, Award.Kind.BEATEN, moment)
    award(bob, quest, Award.Kind.MASTERED, moment)

    pages = []
    cursor = None
    while True:
        page = feed_of(api, alice, limit=2, **({"cursor": cursor} if cursor else {}))
        pages.append(page["results"])
        cursor = page["next"]
        if cursor is None:
            break

    items = [item for page in pages for item in page]
    assert [len(page) for page in pages] == [2, 2, 2, 1]
    assert kinds({"results": items}) == ["unlock"] * 5 + ["award"] * 2  # "unlock" > "award"
    unlock_ids = [item["achievement"]["id"] for item in items[:5]]
    assert len(set(unlock_ids)) == 5
    assert [item["award"] for item in items[5:]] == ["mastered", "beaten"]  # newest id first


def test_a_cursor_we_did_not_hand_out_is_a_400_naming_it(api: Api, alice: Player, busy_friend: list[int]) -> None:
    cursor = feed_of(api, alice, limit=5)["next"]
    forged = cursor[:-1] + ("A" if cursor[-1] != "A" else "B")

    for bad in (forged, "garbage", cursor + "x", "x" * 501):
        error = assert_error(read(api.as_player(alice), cursor=bad), 400, "invalid")
        assert set(error["fields"]) == {"cursor"}, bad


def test_a_page_costs_the_same_queries_however_many_friends_and_items(
    api: Api, alice: Player, quest: Game, django_assert_max_num_queries: Any
) -> None:
    """Her token's player (one query), then one statement: her friends, their items and
    which of those achievements she holds (hidden ones are masked unless she does); the
    achievements come from the catalogue, warm after the first read. A query per friend or
    per item would exceed it many times over."""
    season = save_season(game=quest, name="Cup", starts_at=ago(30), ends_at=ago(20))
    for n in range(12):
        friend = make_player(f"friend{n}")
        befriend(alice, friend)
        give(friend, achievement(quest, "SECRET"), at=ago(25))
        for i in range(4):
            give(friend, step(quest, n + i), at=ago(n + i + 1))
        award(friend, quest, Award.Kind.BEATEN, ago(n))
        passed(alice, friend, quest, ago(n + 0.5))
    close_season(season=season, now=ago(19))
    client = api.as_player(alice)
    assert read(client, limit=100).status_code == 200  # the catalogue warms

    with django_assert_max_num_queries(2):
        page = read(client, limit=100).json()

    assert set(kinds(page)) == {"unlock", "award", "season_finish", "passed"}
    assert len(page["results"]) == 12 * 8  # each friend: 5 unlocks, an award, a pass, a season finish
