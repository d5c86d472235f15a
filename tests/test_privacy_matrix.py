"""Privacy holds on every surface, from one rule each (docs/players.md, "Privacy").

1. Who is identifiable (`tracker.auth.rows_for`): a player who may not be named to a viewer
   is not identifiable by id either. On every board API and page, the friends board, the
   around-me windows, seasons (live and final) and the live board streams, their row keeps
   its rank and points but says "Anonymous player" with a null id, and nothing else of
   theirs (a link, their id in the markup) is on the page. Their standing answers 403.
2. What a hidden achievement is (`achievements.selectors.Reveal`): its name, description,
   icon and api_name are shown only to a player who has unlocked it themselves and to its
   game's own key; everyone else, on every surface, sees "Hidden achievement".

The cast: dana, whose privacy each test sets; alice, her friend; bob, a stranger; an
anonymous visitor; and (for the APIs) game keys.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from achievements.models import Achievement, Unlock
from achievements.services import import_manifest, save_season
from infra import memo
from leaderboards.models import Season
from leaderboards.services import close_season
from players.sharecard import CARD_MAX_AGE, card_png
from tests.conftest import STAR_RAIDERS, Api, achievement, make_player
from tests.helpers import PROGRESS_URL, give, post
from tests.test_friends import befriend
from tests.test_live_consumers import access, close_committed, frames, only, run, server_unlocks, stream
from tests.test_player_pages import logged_in, parse
from tracker.models import Game, Notification, Player, Privacy
from tracker.services import game_key_create

ANONYMOUS = "Anonymous player"
HIDDEN = "Hidden achievement"
PRIVACIES = [Privacy.PUBLIC, Privacy.FRIENDS, Privacy.PRIVATE]
VIEWERS = ["anonymous", "stranger", "friend", "owner"]

# Who may name (and so identify) a player of each privacy.
NAMED_BY = {
    Privacy.PUBLIC: {"anonymous", "stranger", "friend", "owner"},
    Privacy.FRIENDS: {"friend", "owner"},
    Privacy.PRIVATE: {"owner"},
}


# --- The cast and their boards ----------------------------------------------------------------


@dataclass(frozen=True)
class Boards:
    """dana (eu) 50 points, bob (na) 25, alice (eu, dana's friend) 10 on Star Raiders,
    globally, in a running season and in a closed one."""

    dana: Player
    alice: Player
    bob: Player
    game: Game
    season: Season
    closed: Season
    key: str

    def api(self, viewer: str) -> APIClient:
        api = Api()
        return {
            "anonymous": api.anonymous,
            "stranger": lambda: api.as_player(self.bob),
            "friend": lambda: api.as_player(self.alice),
            "owner": lambda: api.as_player(self.dana),
            "key": lambda: api.as_key(self.key),
        }[viewer]()

    def page(self, viewer: str) -> Client:
        who = {"stranger": self.bob, "friend": self.alice, "owner": self.dana}
        return logged_in(who[viewer]) if viewer in who else Client()

    def url(self, template: str) -> str:
        return template.format(game=self.game.pk, season=self.season.pk, closed=self.closed.pk, bob=self.bob.pk)


@pytest.fixture(params=PRIVACIES)
def privacy(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def boards(privacy: str, alice: Player, bob: Player, game: Game) -> Boards:
    dana = make_player("dana", region="eu", privacy=privacy)
    befriend(alice, dana)
    now = timezone.now()
    window = {"starts_at": now - timedelta(days=1), "ends_at": now + timedelta(days=1)}
    season = save_season(game=game, name="Live Cup", **window)
    closed = save_season(game=game, name="Done Cup", **window)
    give(dana, achievement(game, "SECRET_ENDING"))
    give(bob, achievement(game, "ACE_PILOT"))
    give(alice, achievement(game, "FIRST_FLIGHT"))
    close_season(season=closed)
    return Boards(dana, alice, bob, game, season, closed, game_key_create(game=game))


def danas_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """dana's row, found by her points (50: nobody else has them) since it may be anonymous."""
    [row] = [row for row in rows if row["points"] == 50]
    return row


def assert_identified(row: dict[str, Any], dana: Player, named: bool) -> None:
    if named:
        assert (row["player_id"], row["username"]) == (str(dana.pk), "dana")
    else:
        assert (row["player_id"], row["username"]) == (None, ANONYMOUS)


# --- Boards over the API ----------------------------------------------------------------------

# path, and whether it is a board of the game (whose own key names everyone on it)
BOARD_APIS = {
    "game board": ("/api/v1/leaderboards/{game}", True),
    "regional game board": ("/api/v1/leaderboards/{game}?region=eu", True),
    "global board": ("/api/v1/leaderboards/global", False),
    "regional global board": ("/api/v1/leaderboards/global?region=eu", False),
    "season standings": ("/api/v1/seasons/{season}/standings", True),
    "final season standings": ("/api/v1/seasons/{closed}/standings", True),
    "around on the game board": ("/api/v1/leaderboards/{game}/around/{bob}?radius=5", True),
    "around globally": ("/api/v1/leaderboards/global/around/{bob}", False),
    "around in a season": ("/api/v1/seasons/{season}/around/{bob}", True),
}


@pytest.mark.parametrize("surface", list(BOARD_APIS))
@pytest.mark.parametrize("viewer", [*VIEWERS, "key"])
def test_every_board_api_identifies_a_player_exactly_when_it_may_name_them(
    boards: Boards, privacy: str, viewer: str, surface: str
) -> None:
    path, of_the_game = BOARD_APIS[surface]
    named = viewer in NAMED_BY[privacy] or (viewer == "key" and (of_the_game or privacy == Privacy.PUBLIC))

    response = boards.api(viewer).get(boards.url(path))

    assert response.status_code == 200, response.content
    row = danas_row(response.json()["rankings"])
    assert_identified(row, boards.dana, named)
    assert row["rank"] == 1  # the row keeps its place: the board still adds up
    assert named or str(boards.dana.pk) not in response.content.decode()


@pytest.mark.parametrize("viewer", ["stranger", "friend", "owner"])
def test_the_friends_board_identifies_a_friend_exactly_when_it_may_name_them(
    boards: Boards, privacy: str, viewer: str
) -> None:
    response = boards.api(viewer).get(boards.url("/api/v1/leaderboards/{game}/friends"))

    assert response.status_code == 200, response.content
    rows = response.json()["rankings"]
    if viewer == "stranger":  # not her friend: she is not on his board at all
        assert [row["points"] for row in rows] == [25]
        return
    assert_identified(danas_row(rows), boards.dana, viewer in NAMED_BY[privacy])
    assert [row["rank"] for row in rows] == [1, 2]


STANDINGS = {
    "game": "/api/v1/leaderboards/{game}/player/{dana}",
    "global": "/api/v1/leaderboards/global/player/{dana}",
    "season": "/api/v1/seasons/{season}/player/{dana}",
    "final": "/api/v1/seasons/{closed}/player/{dana}",
}


@pytest.mark.parametrize("surface", list(STANDINGS))
@pytest.mark.parametrize("viewer", VIEWERS)
def test_a_standing_answers_only_whom_may_name_the_player(
    boards: Boards, privacy: str, viewer: str, surface: str
) -> None:
    url = STANDINGS[surface].format(
        game=boards.game.pk, season=boards.season.pk, closed=boards.closed.pk, dana=boards.dana.pk
    )

    response = boards.api(viewer).get(url)

    if viewer in NAMED_BY[privacy]:
        assert response.status_code == 200, response.content
        assert (response.json()["rank"], response.json()["points"]) == (1, 50)
    else:
        assert response.status_code == 403, response.content


# --- Boards on pages --------------------------------------------------------------------------

# path, and whether rows link to profiles and carry the player's id for live updates
BOARD_PAGES = {
    "global board": ("/leaderboards/", True),
    "regional global board": ("/leaderboards/?region=eu", True),
    "game board": ("/games/star-raiders/leaderboard/", True),
    "season board": ("/games/star-raiders/leaderboard/?season={season}", True),
    "final season board": ("/games/star-raiders/leaderboard/?season={closed}", True),
    "home top 10": ("/", False),
    "game page top 10": ("/games/star-raiders/", False),
}


def assert_page_identifies(response: Any, dana: Player, named: bool, *, rows_identify: bool) -> None:
    """Named: her name on the page (linked, with her id for live updates, on board pages).
    Not named: "Anonymous player", and neither her name nor her id anywhere in the markup."""
    html, page = response.content.decode(), parse(response)
    if named:
        assert "dana" in page.text
        if rows_identify:
            assert "/players/dana/" in page.links
            assert f'data-player="{dana.pk}"' in html
    else:
        assert ANONYMOUS in page.text
        assert "dana" not in html and str(dana.pk) not in html


@pytest.mark.parametrize("surface", list(BOARD_PAGES))
@pytest.mark.parametrize("viewer", VIEWERS)
def test_every_board_page_identifies_a_player_exactly_when_it_may_name_them(
    boards: Boards, privacy: str, viewer: str, surface: str
) -> None:
    path, rows_identify = BOARD_PAGES[surface]

    response = boards.page(viewer).get(boards.url(path))

    assert_page_identifies(response, boards.dana, viewer in NAMED_BY[privacy], rows_identify=rows_identify)


@pytest.mark.parametrize("viewer", ["friend", "owner"])
def test_the_friends_board_page_identifies_a_friend_exactly_when_it_may_name_them(
    boards: Boards, privacy: str, viewer: str
) -> None:
    response = boards.page(viewer).get("/games/star-raiders/leaderboard/?friends=1")

    assert_page_identifies(response, boards.dana, viewer in NAMED_BY[privacy], rows_identify=True)


# --- Live board streams -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("privacy", PRIVACIES)
def test_board_streams_identify_only_public_players_and_the_player_hears_themself_in_full(
    privacy: str, alice: Player, bob: Player, game: Game, game_key: str
) -> None:
    """Board and season streams are public: whoever listens, anonymous or logged in, a
    non-public player's move is anonymous there. Their own stream tells them everything."""
    dana = make_player("dana", region="eu", privacy=privacy)
    befriend(alice, dana)
    now = timezone.now()
    season = save_season(game=game, name="Live Cup", starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1))
    tokens = {name: access(player) for name, player in (("stranger", bob), ("friend", alice), ("owner", dana))}
    named = privacy == Privacy.PUBLIC

    def assert_watched(data: dict[str, Any]) -> None:
        assert_identified(data, dana, named)
        assert (data["points"], data["new_rank"]) == (50, 1)
        assert named or str(dana.pk) not in json.dumps(data)

    async def scenario() -> None:
        async with (
            stream(f"/ws/leaderboards/{game.pk}/") as anonymous,
            stream(f"/ws/leaderboards/{game.pk}/?token={tokens['stranger']}") as stranger,
            stream(f"/ws/leaderboards/{game.pk}/?token={tokens['friend']}") as friend,
            stream(f"/ws/leaderboards/{game.pk}/?token={tokens['owner']}") as owner,
            stream(f"/ws/seasons/{season.pk}/") as season_watcher,
            stream(f"/ws/me/?token={tokens['owner']}") as own,
        ):
            await server_unlocks(game_key, dana, game, "SECRET_ENDING")

            for watcher in (anonymous, stranger, friend, owner, season_watcher):
                [moved] = await frames(watcher, 1)
                assert moved["type"] == "leaderboard.updated"
                assert_watched(moved["data"])

            mine = await frames(own, 4)  # the unlock, and her game, global and season boards
            toast = only(mine, "achievement.unlocked")
            assert toast["achievement"]["name"] == "The Truth"  # hers alone: never masked
            for board in ("game", "global", "season"):
                data = only(mine, "leaderboard.updated", board=board)
                assert (data["player_id"], data["username"], data["new_rank"]) == (str(dana.pk), "dana", 1)

            await close_committed(season)
            [closed] = await frames(season_watcher, 1)
            assert closed["type"] == "season.closed"
            [top] = closed["data"]["top"]
            assert_identified(top, dana, named)
            assert (top["rank"], top["points"]) == (1, 50)

    run(scenario)


# --- Hidden achievements ----------------------------------------------------------------------

SECRET = "The Truth"
SECRET_ABOUT = "What lies beyond the rim"
SECRET_ICON = "https://cdn.example/truth.png"


@dataclass(frozen=True)
class Secrets:
    """alice (public) unlocked the hidden SECRET_ENDING and First Flight; erin unlocked the
    secret too; bob has nothing hidden."""

    alice: Player
    bob: Player
    erin: Player
    game: Game
    secret: Achievement
    shared: Unlock  # alice's unlock of the secret
    key: str
    other_key: str

    def api(self, viewer: str) -> APIClient:
        api = Api()
        return {
            "anonymous": api.anonymous,
            "stranger": lambda: api.as_player(self.bob),
            "unlocker": lambda: api.as_player(self.erin),
            "owner": lambda: api.as_player(self.alice),
            "key": lambda: api.as_key(self.key),
            "other key": lambda: api.as_key(self.other_key),
        }[viewer]()

    def page(self, viewer: str) -> Client:
        who = {"stranger": self.bob, "unlocker": self.erin, "owner": self.alice}
        return logged_in(who[viewer]) if viewer in who else Client()


# Who sees a hidden achievement: players who unlocked it themselves, and its game's key.
REVEALED_TO = {"unlocker", "owner", "key"}


@pytest.fixture
def secrets(alice: Player, bob: Player, game: Game, other_game: Game) -> Secrets:
    secret = achievement(game, "SECRET_ENDING")
    Achievement.objects.filter(pk=secret.pk).update(description=SECRET_ABOUT, icon=SECRET_ICON)
    memo.clear_all()  # the catalogue holds the set as imported
    erin = make_player("erin", region="na")
    give(alice, achievement(game, "FIRST_FLIGHT"))
    give(alice, secret)
    give(erin, secret)
    give(bob, achievement(game, "ACE_PILOT"))
    return Secrets(
        alice,
        bob,
        erin,
        game,
        Achievement.objects.get(pk=secret.pk),
        Unlock.objects.get(player=alice, achievement=secret),
        game_key_create(game=game),
        game_key_create(game=other_game),
    )


def the_secret(items: list[dict[str, Any]], secrets: Secrets) -> dict[str, Any]:
    [item] = [item for item in items if item["id"] == str(secrets.secret.pk)]
    return item


def assert_item_revealed(item: dict[str, Any], revealed: bool) -> None:
    if revealed:
        assert (item["name"], item["description"], item["icon"], item["api_name"]) == (
            SECRET,
            SECRET_ABOUT,
            SECRET_ICON,
            "SECRET_ENDING",
        )
    else:
        assert (item["name"], item["description"], item["icon"], item["api_name"]) == (HIDDEN, "", "", None)
    # Points and rarity stay: the totals beside it count it.
    assert (item["hidden"], item["points"]) == (True, 50)
    assert item["rarity"] and "unlock_percentage" in item


# surface -> how to find the secret's item in the answer
ACHIEVEMENT_APIS: dict[str, tuple[str, Callable[[dict[str, Any]], list[dict[str, Any]]]]] = {
    "the game's list": ("/api/v1/games/{game}/achievements", lambda body: body["achievements"]),
    "alice's list": ("/api/v1/players/{alice}/achievements", lambda body: body["achievements"]),
    "alice's dashboard": ("/api/v1/players/{alice}/dashboard", lambda body: body["recent_achievements"]),
}


@pytest.mark.parametrize("surface", list(ACHIEVEMENT_APIS))
@pytest.mark.parametrize("viewer", ["anonymous", "stranger", "unlocker", "owner", "key", "other key"])
def test_every_achievement_api_reveals_a_hidden_one_only_to_who_unlocked_it_and_its_game(
    secrets: Secrets, viewer: str, surface: str
) -> None:
    path, items = ACHIEVEMENT_APIS[surface]

    response = secrets.api(viewer).get(path.format(game=secrets.game.pk, alice=secrets.alice.pk))

    assert response.status_code == 200, response.content
    assert_item_revealed(the_secret(items(response.json()), secrets), viewer in REVEALED_TO)
    if viewer not in REVEALED_TO:
        assert SECRET not in response.content.decode() and SECRET_ABOUT not in response.content.decode()


ACHIEVEMENT_PAGES = {
    "alice's profile": "/players/alice/",
    "alice's Star Raiders page": "/players/alice/games/star-raiders/",
    "alice compared with bob": "/compare/star-raiders/alice/bob/",
    "the game page": "/games/star-raiders/",
    "alice's share page": "/share/{shared}/",
}


@pytest.mark.parametrize("surface", list(ACHIEVEMENT_PAGES))
@pytest.mark.parametrize("viewer", ["anonymous", "stranger", "unlocker", "owner"])
def test_every_page_reveals_a_hidden_achievement_only_to_who_unlocked_it(
    secrets: Secrets, viewer: str, surface: str
) -> None:
    response = secrets.page(viewer).get(ACHIEVEMENT_PAGES[surface].format(shared=secrets.shared.pk))

    html = response.content.decode()
    page = parse(response)
    if viewer in REVEALED_TO:
        assert SECRET in page.text
    else:
        assert HIDDEN in page.text
        assert SECRET not in html and SECRET_ABOUT not in html and SECRET_ICON not in html


@pytest.mark.parametrize("viewer", ["anonymous", "stranger", "unlocker", "owner"])
def test_the_share_page_of_a_hidden_achievement_is_masked_not_missing_and_so_is_its_preview(
    secrets: Secrets, viewer: str
) -> None:
    """A viewer who may see the player gets the share page (never a 404 for the secret's
    sake); its link preview and card say only as much as the viewer may see."""
    client = secrets.page(viewer)

    page = parse(client.get(f"/share/{secrets.shared.pk}/"))
    card = client.get(f"/share/{secrets.shared.pk}/card.png")

    revealed = viewer in REVEALED_TO
    previews = [page.meta[name] for name in ("og:title", "og:description", "twitter:title", "twitter:description")]
    if revealed:
        assert page.meta["og:title"] == "alice unlocked “The Truth” in Star Raiders"
        assert page.meta["twitter:title"] == "alice unlocked “The Truth”"
    else:
        assert page.meta["og:title"] == "alice unlocked a hidden achievement in Star Raiders"
        assert page.meta["twitter:title"] == "alice unlocked a hidden achievement"
        assert not any(SECRET in text or SECRET_ABOUT in text for text in previews)
    assert "50 points" in page.meta["og:description"]
    assert card.status_code == 200 and card["Content-Type"] == "image/png"
    assert card.content == card_png(secrets.shared, masked=not revealed)
    assert card.content != card_png(secrets.shared, masked=revealed)
    # It differs by viewer, so no shared cache may keep it.
    assert card["Cache-Control"].startswith("private")


def test_a_card_everyone_sees_alike_may_be_cached_by_anyone(secrets: Secrets) -> None:
    plain = Unlock.objects.get(player=secrets.alice, achievement__api_name="FIRST_FLIGHT")

    card = Client().get(f"/share/{plain.pk}/card.png")

    assert card["Cache-Control"] == f"public, max-age={CARD_MAX_AGE}"


@pytest.mark.parametrize("viewer", ["owner", "unlocker"])
def test_a_players_own_dashboard_shows_their_hidden_unlocks(secrets: Secrets, viewer: str) -> None:
    page = parse(secrets.page(viewer).get("/dashboard/"))

    assert SECRET in page.text and HIDDEN not in page.text


@pytest.fixture
def grind(game: Game) -> Achievement:
    """A hidden, client-unlockable achievement reached by progress (10 steps)."""
    document = {**STAR_RAIDERS, "achievements": [*STAR_RAIDERS["achievements"]]}
    document["achievements"].append(
        {
            "api_name": "DEEP_GRIND",
            "name": "Deep Grind",
            "points": 5,
            "hidden": True,
            "client_unlockable": True,
            "progress_target": 10,
        }
    )
    import_manifest(manifest=document)
    return achievement(game, "DEEP_GRIND")


def test_progress_reveals_a_hidden_achievement_to_the_player_only_once_they_hold_it(
    api: Api, alice: Player, grind: Achievement
) -> None:
    def report(value: int) -> dict[str, Any]:
        body = {"player_id": str(alice.pk), "achievement_id": str(grind.pk), "value": value}
        response = post(api.as_player(alice), PROGRESS_URL, body)
        assert response.status_code == 200, response.content
        return response.json()["achievement"]

    assert report(3)["name"] == HIDDEN
    assert report(10)["name"] == "Deep Grind"


def test_progress_reported_by_the_games_key_shows_the_achievement(
    api: Api, alice: Player, grind: Achievement, game_key: str
) -> None:
    body = {"player_id": str(alice.pk), "achievement": "DEEP_GRIND", "value": 3}

    response = post(api.as_key(game_key), PROGRESS_URL, body)

    assert response.json()["achievement"]["name"] == "Deep Grind"


def test_a_strangers_view_of_a_players_list_costs_one_query_more_than_the_owners(
    api: Api, secrets: Secrets, django_assert_max_num_queries: Any
) -> None:
    # user, player, the page, the total; + the viewer's unlocks among the hidden ones listed.
    url = f"/api/v1/players/{secrets.alice.pk}/achievements"
    owner, stranger = api.as_player(secrets.alice), api.as_player(secrets.bob)
    with django_assert_max_num_queries(4):
        owner.get(url)
    with django_assert_max_num_queries(5):
        response = stranger.get(url)
    assert the_secret(response.json()["achievements"], secrets)["name"] == HIDDEN


# --- One rule, one home -----------------------------------------------------------------------


def test_a_private_player_passes_no_friend_with_a_rival_alert(
    alice: Player, game: Game, django_capture_on_commit_callbacks: Any
) -> None:
    """The alert would name them and their points to a friend who may not see them."""
    dana = make_player("dana", privacy=Privacy.PRIVATE)
    frank = make_player("frank", privacy=Privacy.FRIENDS)
    for friend in (dana, frank):
        befriend(alice, friend)
    give(alice, achievement(game, "FIRST_FLIGHT"))

    with django_capture_on_commit_callbacks(execute=True):
        give(dana, achievement(game, "ACE_PILOT"))
        give(frank, achievement(game, "ACE_PILOT"))

    alerts = Notification.objects.filter(player=alice).values_list("payload", flat=True)
    assert [alert["rival_username"] for alert in alerts] == ["frank"]
