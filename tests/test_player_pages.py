"""The player's site: every page renders for the right people with the right data, forms
do what they say, privacy holds on pages as in the API, and pages stay within a fixed
number of queries however much there is to show."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from html import unescape
from html.parser import HTMLParser
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from PIL import Image

from achievements.models import Source, Unlock
from achievements.services import import_manifest, record_progress
from achievements.tasks import refresh_rarity
from leaderboards.boards import Board
from players.snapshots import take_snapshots
from stats.services import record_play_session
from tests.conftest import Api, achievement, make_player
from tests.helpers import give, logged_in, manifest
from tracker.models import Friendship, Game, Notification, Player, Privacy


class PageParser(HTMLParser):
    """The visible text of a page (no scripts or styles), its meta tags, links and forms."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []
        self.meta: dict[str, str] = {}
        self.links: list[str] = []
        self.forms: list[str] = []
        self.buttons: list[dict[str, str | None]] = []
        self.canvases: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag in ("script", "style"):
            self._skip += 1
        elif tag == "meta" and (attributes.get("property") or attributes.get("name")):
            self.meta[attributes.get("property") or attributes.get("name") or ""] = attributes.get("content") or ""
        elif tag == "a" and attributes.get("href"):
            self.links.append(attributes["href"] or "")
        elif tag == "form":
            self.forms.append(attributes.get("action") or "")
        elif tag == "button":
            self.buttons.append(attributes)
        elif tag == "canvas":
            self.canvases.append(attributes.get("data-chart") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.chunks.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.chunks).split())


def parse(response: Any, status: int = 200) -> PageParser:
    assert response.status_code == status, (response.status_code, response.content[:500])
    parser = PageParser()
    parser.feed(response.content.decode())
    return parser


def text(response: Any, status: int = 200) -> str:
    return parse(response, status).text


def play(player: Player, game: Game, seconds: int) -> None:
    end = timezone.now() - timedelta(minutes=1)
    record_play_session(
        player=player,
        game=game,
        session_id=f"s-{seconds}",
        started_at=end - timedelta(seconds=seconds),
        ended_at=end,
        source="server",
    )


def befriend(a: Player, b: Player) -> None:
    Friendship.objects.create(requester=a, addressee=b, status=Friendship.Status.ACCEPTED)


@pytest.fixture
def world(alice: Player, bob: Player, charlie: Player, game: Game, other_game: Game) -> dict[str, Any]:
    """alice: First Flight and Ace Pilot (35 points, 2 of 4, 1.5 h) in Star Raiders,
    First Ore in Moon Miners (40 points overall); bob: all four Star Raiders achievements
    (100); charlie (private): First Flight. Rarity refreshed."""
    start = (timezone.now() - timedelta(days=2)).replace(hour=12, minute=0, second=0, microsecond=0)
    give(alice, achievement(game, "FIRST_FLIGHT"), at=start)
    give(alice, achievement(game, "ACE_PILOT"), at=start + timedelta(hours=1))
    give(alice, achievement(other_game, "FIRST_ORE"), at=start + timedelta(hours=2))
    play(alice, game, 5400)
    for i, name in enumerate(["FIRST_FLIGHT", "ACE_PILOT", "SECRET_ENDING", "KILL_100"]):
        give(bob, achievement(game, name), at=start + timedelta(minutes=10 + i))
    give(charlie, achievement(game, "FIRST_FLIGHT"), at=start)
    for each in (game, other_game):
        refresh_rarity(str(each.pk))
    return {"start": start}


# --- Home ---------------------------------------------------------------------------------


class TestHome:
    def test_it_lists_the_games_and_the_global_top(self, client: Client, world: dict[str, Any]) -> None:
        page = text(client.get("/"))
        assert "Star Raiders 4 achievements · 100 points" in page
        assert "Moon Miners 1 achievement" in page
        assert "1 bob 100 2 alice 40 3 Anonymous player 10" in page  # charlie is private
        assert "charlie" not in page

    @pytest.mark.parametrize("url", ["/", "/games/moon-miners/"])
    def test_a_single_achievement_is_not_plural(self, client: Client, other_game: Game, url: str) -> None:
        assert "1 achievements" not in text(client.get(url))

    def test_the_global_top_stops_at_ten(self, client: Client, db: Any) -> None:
        big = import_manifest(manifest=manifest("points", 12)).game
        achievements = list(big.achievements.order_by("api_name"))
        for i in range(12):
            player = make_player(f"climber{i:02d}")
            for each in achievements[: i + 1]:
                give(player, each)

        parser = parse(client.get("/"))
        shown = re.findall(r"climber\d\d", parser.text)
        assert shown == [f"climber{i:02d}" for i in range(11, 1, -1)]
        assert "/players/climber11/" in parser.links

    def test_it_shows_the_latest_rare_unlocks_of_public_players(
        self, client: Client, alice: Player, charlie: Player, game: Game
    ) -> None:
        for i in range(11):
            give(make_player(f"rookie{i:02d}"), achievement(game, "FIRST_FLIGHT"))
        give(alice, achievement(game, "ACE_PILOT"))  # 1 of 13 players: rare
        give(charlie, achievement(game, "KILL_100"))  # rare too, but charlie is private
        refresh_rarity(str(game.pk))

        page = text(client.get("/"))

        rare = page.split("Latest rare unlocks", 1)[1]
        assert "Ace Pilot alice in Star Raiders" in rare
        assert "First Flight" not in rare  # common
        assert "Centurion" not in rare and "charlie" not in rare

    def test_rare_on_the_home_page_is_the_rare_tier_or_rarer(
        self, client: Client, alice: Player, bob: Player, game: Game
    ) -> None:
        for i in range(5):
            give(make_player(f"rookie{i:02d}"), achievement(game, "FIRST_FLIGHT"))
        give(bob, achievement(game, "FIRST_FLIGHT"))
        give(alice, achievement(game, "ACE_PILOT"))  # 1 of 7 players, 14.3%: the rare tier
        refresh_rarity(str(game.pk))

        rare = text(client.get("/")).split("Latest rare unlocks", 1)[1]

        assert achievement(game, "ACE_PILOT").rarity == "rare"
        assert "Ace Pilot alice in Star Raiders" in rare

    def test_an_empty_site_says_so(self, client: Client, db: Any) -> None:
        page = text(client.get("/"))
        assert "No games yet." in page
        assert "Nobody is ranked yet." in page
        assert "Create your profile" in page


# --- Profile ------------------------------------------------------------------------------


class TestProfile:
    def test_it_shows_totals_games_with_completion_and_the_rarest(
        self, client: Client, alice: Player, world: dict[str, Any]
    ) -> None:
        parser = parse(client.get("/players/alice/"))
        page = parser.text

        assert "alice Europe" in page
        assert "Points 40" in page
        assert "Achievements 3" in page
        assert "Global rank #2" in page
        assert "Played 1.5 h" in page
        assert "Star Raiders 2/4 · 50.0%" in page
        assert "Moon Miners 1/1 · 100.0%" in page
        assert "/players/alice/games/star-raiders/" in parser.links
        # Rarest first: Ace Pilot (2 of 3 players) before First Flight and First Ore (everyone).
        rarest = page.split("Rarest achievements", 1)[1].split("Recent achievements", 1)[0]
        assert rarest.index("Ace Pilot") < rarest.index("First Flight")
        assert {"points", "unlocks"} <= set(parser.canvases)

    def test_the_username_is_case_insensitive(self, client: Client, world: dict[str, Any]) -> None:
        assert "Points 40" in text(client.get("/players/ALICE/"))

    def test_an_unknown_player_is_404(self, client: Client, db: Any) -> None:
        assert client.get("/players/nobody/").status_code == 404

    def test_my_own_profile_says_it_is_me(self, alice: Player, world: dict[str, Any]) -> None:
        mine = text(logged_in(alice).get("/players/alice/"))
        assert "this is you ( public profile )" in mine
        assert "this is you" not in text(Client().get("/players/alice/"))


# --- A player's game ----------------------------------------------------------------------


class TestPlayerGame:
    def test_it_lists_unlocked_and_locked_achievements(
        self, client: Client, alice: Player, world: dict[str, Any]
    ) -> None:
        html = client.get("/players/alice/games/star-raiders/").content.decode()
        page = text(client.get("/players/alice/games/star-raiders/"))

        assert "Completion 50.0%" in page
        assert "Achievements 2/4" in page
        assert "Points 35" in page
        assert "Rank #2" in page
        assert "★ First Flight" in page and "★ Ace Pilot" in page
        assert "☆ Centurion" in page
        assert html.count('class="ach locked"') == 2
        # Unlocked first, newest first.
        assert page.index("Ace Pilot") < page.index("First Flight") < page.index("Centurion")

    def test_a_hidden_achievement_is_masked_until_the_viewer_unlocks_it(
        self, client: Client, bob: Player, world: dict[str, Any]
    ) -> None:
        alices = text(client.get("/players/alice/games/star-raiders/"))
        assert "? Hidden achievement Keep playing to reveal this one." in alices
        assert "The Truth" not in alices

        # bob unlocked it: he sees it, on his page and on alice's; a visitor does not.
        for page in ("/players/bob/games/star-raiders/", "/players/alice/games/star-raiders/"):
            seen = text(logged_in(bob).get(page))
            assert "The Truth" in seen
            assert "Hidden achievement" not in seen
        assert "The Truth" not in text(client.get("/players/bob/games/star-raiders/"))

    def test_an_incremental_achievement_shows_a_progress_bar(
        self, client: Client, alice: Player, game: Game, world: dict[str, Any]
    ) -> None:
        record_progress(player=alice, achievement=achievement(game, "KILL_100"), value=40, source=Source.GAME_SERVER)

        response = client.get("/players/alice/games/star-raiders/")

        assert '<div class="bar" title="40 / 100"><span style="width: 40.0%"></span></div>' in response.content.decode()
        assert "Centurion 40 / 100" in text(response)

    def test_another_player_gets_a_compare_link(self, bob: Player, world: dict[str, Any]) -> None:
        parser = parse(logged_in(bob).get("/players/alice/games/star-raiders/"))
        assert "/compare/star-raiders/bob/alice/" in parser.links

    def test_an_unknown_game_is_404(self, client: Client, world: dict[str, Any]) -> None:
        assert client.get("/players/alice/games/no-such-game/").status_code == 404


# --- Numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [(66.666, "66.7%"), (100, "100.0%"), (0, "0.0%"), (0.01, "<0.1%"), (0.05, "0.1%"), (None, "–")],
)
def test_every_percentage_is_written_with_one_decimal(value: float | None, shown: str) -> None:
    from django.template import Context, Template

    rendered = Template("{% load numbers %}{{ value|percent }}").render(Context({"value": value}))
    assert unescape(rendered) == shown


# --- A game -------------------------------------------------------------------------------


class TestGamePage:
    def test_it_shows_the_set_with_global_unlock_rates_and_the_top(self, client: Client, world: dict[str, Any]) -> None:
        page = text(client.get("/games/star-raiders/"))

        assert "4 achievements · 100 points · 3 ranked players" in page
        assert "First Flight 10 pts common · 100.0%" in page
        assert "Ace Pilot 25 pts common · 66.7%" in page
        assert "Centurion 15 pts uncommon · 33.3%" in page
        assert "1 bob 100 2 alice 35 3 Anonymous player 10" in page

    def test_a_hidden_achievement_is_masked_for_those_who_have_not_unlocked_it(
        self, client: Client, alice: Player, bob: Player, world: dict[str, Any]
    ) -> None:
        for viewer in (client, logged_in(alice)):
            page = text(viewer.get("/games/star-raiders/"))
            assert "Hidden achievement" in page and "The Truth" not in page
        assert "The Truth" in text(logged_in(bob).get("/games/star-raiders/"))

    def test_a_signed_in_player_sees_which_achievements_they_hold(self, alice: Player, world: dict[str, Any]) -> None:
        html = logged_in(alice).get("/games/star-raiders/").content.decode()
        held = re.findall(r'<li class="ach">.*?<div class="name">([^<]+)</div>', html, re.S)
        locked = re.findall(r'<li class="ach locked">.*?<div class="name">([^<]+)</div>', html, re.S)

        assert sorted(held) == ["Ace Pilot", "First Flight"]
        assert sorted(locked) == ["Centurion", "Hidden achievement"]
        assert world["start"].strftime("%b %-d, %Y") in text(logged_in(alice).get("/games/star-raiders/"))

    def test_an_anonymous_visitor_sees_every_achievement_locked(self, client: Client, world: dict[str, Any]) -> None:
        html = client.get("/games/star-raiders/").content.decode()
        assert html.count('<li class="ach locked">') == 4

    def test_the_top_links_to_named_players_only(self, client: Client, world: dict[str, Any]) -> None:
        links = parse(client.get("/games/star-raiders/")).links
        assert "/players/bob/" in links and "/players/alice/" in links
        assert "/players/charlie/" not in links

    def test_an_unknown_game_is_404(self, client: Client, db: Any) -> None:
        assert client.get("/games/no-such-game/").status_code == 404


# --- Dashboard ----------------------------------------------------------------------------


class TestDashboard:
    def test_it_needs_a_login(self, client: Client, db: Any) -> None:
        response = client.get("/dashboard/")
        assert response.status_code == 302
        assert response["Location"] == "/accounts/login/?next=/dashboard/"

    def test_it_shows_my_totals_games_recent_unlocks_and_charts(self, alice: Player, world: dict[str, Any]) -> None:
        parser = parse(logged_in(alice).get("/dashboard/"))
        page = parser.text

        assert "Points 40 Achievements 3 Games 2 Avg. completion 75.0% Played 1.5 h Global rank #2" in page
        assert "Star Raiders 35 pts · 50.0%" in page
        recent = page.split("Recent achievements", 1)[1]
        assert recent.index("First Ore") < recent.index("Ace Pilot") < recent.index("First Flight")
        assert set(parser.canvases) == {"points", "unlocks", "playtime"}
        assert "Rival alerts" not in page

    def test_a_new_player_gets_an_empty_dashboard(self, db: Any) -> None:
        newcomer = make_player("newcomer")
        page = text(logged_in(newcomer).get("/dashboard/"))
        assert "Points 0 Achievements 0 Games 0" in page
        assert "Global rank –" in page
        assert "Play a game with Questboard support" in page


# --- Friends ------------------------------------------------------------------------------


class TestFriendsPage:
    def test_it_needs_a_login(self, client: Client, db: Any) -> None:
        assert client.get("/friends/")["Location"] == "/accounts/login/?next=/friends/"

    def test_a_request_is_sent_through_the_form(self, alice: Player, bob: Player) -> None:
        client = logged_in(alice)

        response = client.post("/friends/", {"username": "bob"}, follow=True)

        page = text(response)
        assert "Friend request sent to bob." in page
        assert "Waiting for an answer bob" in page
        assert Friendship.objects.filter(requester=alice, addressee=bob, status="pending").exists()

    @pytest.mark.parametrize(
        ("username", "message"),
        [("nobody", "No player by that name."), ("alice", "You cannot befriend yourself.")],
    )
    def test_a_bad_request_shows_why(self, alice: Player, username: str, message: str) -> None:
        page = text(logged_in(alice).post("/friends/", {"username": username}))
        assert message in page
        assert not Friendship.objects.exists()

    def test_asking_twice_shows_why(self, alice: Player, bob: Player) -> None:
        client = logged_in(alice)
        client.post("/friends/", {"username": "bob"})
        assert "You have already asked; waiting for an answer." in text(client.post("/friends/", {"username": "bob"}))
        assert Friendship.objects.count() == 1

    def test_an_incoming_request_is_accepted(self, alice: Player, bob: Player) -> None:
        request = Friendship.objects.create(requester=alice, addressee=bob)
        client = logged_in(bob)
        parser = parse(client.get("/friends/"))
        assert "Requests for you alice" in parser.text
        assert f"/friends/requests/{request.pk}/accept/" in parser.forms

        page = text(client.post(f"/friends/requests/{request.pk}/accept/", follow=True))

        assert "Friend request accepted." in page
        assert "Your friends alice" in page
        assert Friendship.objects.are_friends(alice, bob)

    def test_an_incoming_request_is_declined(self, alice: Player, bob: Player) -> None:
        request = Friendship.objects.create(requester=alice, addressee=bob)
        page = text(logged_in(bob).post(f"/friends/requests/{request.pk}/decline/", follow=True))
        assert "Friend request declined." in page
        assert "No friends yet." in page
        assert not Friendship.objects.exists()

    def test_someone_elses_request_cannot_be_answered(self, alice: Player, bob: Player, charlie: Player) -> None:
        request = Friendship.objects.create(requester=alice, addressee=bob)
        page = text(logged_in(charlie).post(f"/friends/requests/{request.pk}/accept/", follow=True))
        assert "No such pending friend request for you." in page
        assert Friendship.objects.get().status == "pending"

    def test_answering_needs_a_post(self, alice: Player, bob: Player) -> None:
        request = Friendship.objects.create(requester=alice, addressee=bob)
        assert logged_in(bob).get(f"/friends/requests/{request.pk}/accept/").status_code == 405
        assert Friendship.objects.get().status == "pending"

    def test_a_friend_is_removed(self, alice: Player, bob: Player, game: Game) -> None:
        befriend(alice, bob)
        client = logged_in(alice)
        parser = parse(client.get("/friends/"))
        assert "Your friends bob" in parser.text
        assert "/friends/bob/remove/" in parser.forms

        page = text(client.post("/friends/bob/remove/", follow=True))

        assert "bob is no longer on your friends list." in page
        assert not Friendship.objects.exists()

    def test_a_pending_request_is_withdrawn(self, alice: Player, bob: Player) -> None:
        Friendship.objects.create(requester=alice, addressee=bob)
        logged_in(alice).post("/friends/bob/remove/")
        assert not Friendship.objects.exists()

    def test_the_compare_form_leads_to_the_comparison(self, alice: Player, bob: Player, game: Game) -> None:
        befriend(alice, bob)
        client = logged_in(alice)
        assert "/compare/" in parse(client.get("/friends/")).forms
        response = client.get("/compare/", {"game": "star-raiders", "a": "alice", "b": "bob"})
        assert response["Location"] == "/compare/star-raiders/alice/bob/"


# --- Compare ------------------------------------------------------------------------------


class TestCompare:
    def test_it_shows_both_players_side_by_side(self, client: Client, bob: Player, world: dict[str, Any]) -> None:
        response = client.get("/compare/star-raiders/alice/bob/")
        page = text(response)
        day = world["start"].strftime("%b %-d, %Y")

        assert "alice vs bob in Star Raiders" in page
        assert "alice 35 pts 2/4 · 50.0%" in page
        assert "bob 100 pts 4/4 · 100.0%" in page
        assert f"Ace Pilot · common 25 ✔ {day} ✔ {day}" in page
        assert f"Centurion · uncommon 15 – ✔ {day}" in page
        # Unlocked by one of the two, but not by the visitor: masked; shown to bob, who has it.
        assert "The Truth" not in page and "Hidden achievement" in page
        assert "The Truth" in text(logged_in(bob).get("/compare/star-raiders/alice/bob/"))

    def test_a_hidden_achievement_neither_has_stays_masked(
        self, client: Client, alice: Player, world: dict[str, Any]
    ) -> None:
        make_player("dave")
        page = text(client.get("/compare/star-raiders/alice/dave/"))
        assert "Hidden achievement" in page and "The Truth" not in page
        assert "dave 0 pts 0/4 · 0.0%" in page

    def test_a_private_player_cannot_be_compared_by_others(self, client: Client, world: dict[str, Any]) -> None:
        assert "This profile is private." in text(client.get("/compare/star-raiders/alice/charlie/"), 403)

    def test_a_private_player_compares_themself(self, charlie: Player, world: dict[str, Any]) -> None:
        assert "charlie vs alice" in text(logged_in(charlie).get("/compare/star-raiders/charlie/alice/"))

    def test_an_unknown_game_or_player_is_404(self, client: Client, world: dict[str, Any]) -> None:
        assert client.get("/compare/nope/alice/bob/").status_code == 404
        assert client.get("/compare/star-raiders/alice/nobody/").status_code == 404


# --- Share --------------------------------------------------------------------------------


def unlock_of(player: Player, game: Game, api_name: str) -> Unlock:
    return Unlock.objects.get(player=player, achievement=achievement(game, api_name))


class TestShare:
    def test_the_share_page_has_a_rich_preview_and_a_copy_button(
        self, client: Client, alice: Player, game: Game, world: dict[str, Any]
    ) -> None:
        shared = unlock_of(alice, game, "ACE_PILOT")

        parser = parse(client.get(f"/share/{shared.pk}/"))

        meta = parser.meta
        assert meta["og:title"] == "alice unlocked “Ace Pilot” in Star Raiders"
        assert meta["og:image"] == f"http://testserver/share/{shared.pk}/card.png"
        assert meta["og:url"] == f"http://testserver/share/{shared.pk}/"
        assert (meta["og:image:width"], meta["og:image:height"]) == ("1200", "630")
        assert "25 points" in meta["og:description"] and "Common" in meta["og:description"]
        assert meta["twitter:card"] == "summary_large_image"
        assert meta["twitter:image"] == meta["og:image"]
        assert any(b.get("data-copy") == "#share-url" for b in parser.buttons)
        assert "Copy link" in parser.text
        assert "alice unlocked it in Star Raiders" in parser.text

    def test_the_card_is_a_1200_by_630_png(
        self, client: Client, alice: Player, game: Game, world: dict[str, Any]
    ) -> None:
        response = client.get(f"/share/{unlock_of(alice, game, 'ACE_PILOT').pk}/card.png")

        assert response.status_code == 200
        assert response["Content-Type"] == "image/png"
        image = Image.open(io.BytesIO(response.content))
        assert (image.format, image.size) == ("PNG", (1200, 630))
        assert len(image.getcolors(maxcolors=1_000_000) or []) > 10  # drawn on, not a blank canvas

    def test_profiles_link_to_the_share_page(
        self, client: Client, alice: Player, game: Game, world: dict[str, Any]
    ) -> None:
        assert f"/share/{unlock_of(alice, game, 'ACE_PILOT').pk}/" in parse(client.get("/players/alice/")).links

    @pytest.mark.parametrize("suffix", ["", "card.png"])
    def test_a_private_players_unlock_is_not_shared_with_others(
        self, client: Client, alice: Player, charlie: Player, game: Game, world: dict[str, Any], suffix: str
    ) -> None:
        url = f"/share/{unlock_of(charlie, game, 'FIRST_FLIGHT').pk}/{suffix}"
        assert client.get(url).status_code == 404
        assert logged_in(alice).get(url).status_code == 404
        assert logged_in(charlie).get(url).status_code == 200

    def test_a_friends_only_unlock_is_shared_with_friends(
        self, client: Client, alice: Player, bob: Player, game: Game, world: dict[str, Any]
    ) -> None:
        alice.privacy = Privacy.FRIENDS
        alice.save(update_fields=["privacy"])
        befriend(alice, bob)
        url = f"/share/{unlock_of(alice, game, 'ACE_PILOT').pk}/"
        assert logged_in(bob).get(url).status_code == 200
        assert client.get(url).status_code == 404

    def test_an_unknown_unlock_is_404(self, client: Client, db: Any) -> None:
        assert client.get("/share/999999/").status_code == 404
        assert client.get("/share/999999/card.png").status_code == 404


# --- Privacy on pages ---------------------------------------------------------------------

PRIVATE_PAGES = ["/players/{u}/", "/players/{u}/games/star-raiders/"]


class TestPrivacyOnPages:
    @pytest.mark.parametrize("url", PRIVATE_PAGES)
    def test_a_private_profile_is_a_403_page_for_strangers_and_anonymous(
        self, client: Client, alice: Player, world: dict[str, Any], url: str
    ) -> None:
        for viewer in (client, logged_in(alice)):
            response = viewer.get(url.format(u="charlie"))
            page = text(response, 403)
            assert "charlie This profile is private." in page
            assert "First Flight" not in page and "Points" not in page

    @pytest.mark.parametrize("url", PRIVATE_PAGES)
    def test_a_private_player_sees_their_own_pages(self, charlie: Player, world: dict[str, Any], url: str) -> None:
        assert "First Flight" in text(logged_in(charlie).get(url.format(u="charlie")))

    @pytest.mark.parametrize("url", PRIVATE_PAGES)
    def test_a_friends_only_profile_is_visible_to_friends_only(
        self, client: Client, alice: Player, bob: Player, charlie: Player, world: dict[str, Any], url: str
    ) -> None:
        alice.privacy = Privacy.FRIENDS
        alice.save(update_fields=["privacy"])
        befriend(bob, alice)
        url = url.format(u="alice")

        assert "Ace Pilot" in text(logged_in(bob).get(url))
        stranger = text(logged_in(charlie).get(url), 403)
        assert "visible to friends only" in stranger and "Send a friend request" in stranger
        assert "visible to friends only" in text(client.get(url), 403)

    def test_a_private_player_is_anonymous_on_the_home_and_game_pages(
        self, client: Client, world: dict[str, Any]
    ) -> None:
        for url in ("/", "/games/star-raiders/"):
            page = text(client.get(url))
            assert "Anonymous player" in page and "charlie" not in page


# --- Sign-up ------------------------------------------------------------------------------


def signup_form(**changes: str) -> dict[str, str]:
    return {
        "username": "newbie",
        "email": "newbie@example.com",
        "region": "sa",
        "password1": "a-long-unusual-passphrase",
        "password2": "a-long-unusual-passphrase",
    } | changes


class TestSignup:
    def test_signing_up_creates_the_account_and_logs_in(self, client: Client, db: Any) -> None:
        response = client.post("/accounts/signup/", signup_form())

        assert response.status_code == 302
        assert response["Location"] == "/dashboard/"
        player = Player.objects.get(username="newbie")
        assert (player.region, player.email, player.privacy) == ("sa", "newbie@example.com", "public")
        assert player.check_password("a-long-unusual-passphrase")
        page = text(client.get("/dashboard/"))
        assert "Welcome to Questboard, newbie!" in page
        assert "Your dashboard" in page

    def test_the_new_account_logs_in_with_its_password(self, client: Client, db: Any) -> None:
        client.post("/accounts/signup/", signup_form())
        fresh = Client()
        response = fresh.post("/accounts/login/", {"username": "newbie", "password": "a-long-unusual-passphrase"})
        assert response.status_code == 302
        assert fresh.get("/dashboard/").status_code == 200

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"password2": "something-else-entirely"}, "The passwords differ."),
            ({"password1": "short", "password2": "short"}, "at least 8 characters"),
            ({"password1": "password123", "password2": "password123"}, "too common"),
            ({"username": "no spaces please"}, "Use 3–30 letters, digits, _ . or -."),
            ({"email": "not-an-email"}, "Enter a valid email address."),
            ({"region": "mars"}, "Select a valid choice."),
            ({"username": "ALICE"}, "Already taken."),
        ],
        ids=["mismatch", "short", "common", "bad-username", "bad-email", "bad-region", "taken"],
    )
    def test_a_bad_signup_shows_why_and_creates_nothing(
        self, client: Client, alice: Player, changes: dict[str, str], message: str
    ) -> None:
        before = Player.objects.count()

        page = text(client.post("/accounts/signup/", signup_form(**changes)))

        assert message in page
        assert "Create your profile" in page
        assert Player.objects.count() == before
        assert client.get("/dashboard/").status_code == 302

    def test_the_form_is_shown(self, client: Client, db: Any) -> None:
        page = text(client.get("/accounts/signup/"))
        assert "Create your profile" in page and "Password again" in page


# --- Settings -----------------------------------------------------------------------------


class TestSettings:
    def test_it_needs_a_login(self, client: Client, db: Any) -> None:
        assert client.get("/settings/")["Location"] == "/accounts/login/?next=/settings/"

    def test_it_shows_my_current_settings(self, alice: Player) -> None:
        html = logged_in(alice).get("/settings/").content.decode()
        assert 'value="alice@example.com"' in html
        assert re.search(r'<option value="eu" selected>', html)
        assert re.search(r'value="public"[^>]*checked', html)

    def test_saving_changes_region_privacy_and_email(self, alice: Player) -> None:
        client = logged_in(alice)

        response = client.post(
            "/settings/", {"region": "asia", "privacy": "friends", "email": "new@example.com"}, follow=True
        )

        assert "Settings saved." in text(response)
        alice.refresh_from_db()
        assert (alice.region, alice.privacy, alice.email) == ("asia", "friends", "new@example.com")
        assert list(Player.objects.with_email("new@example.com")) == [alice]

    def test_saving_says_nothing_of_whether_another_account_has_the_email(self, alice: Player, bob: Player) -> None:
        response = logged_in(alice).post(
            "/settings/", {"region": "na", "privacy": "private", "email": "Bob@Example.com"}, follow=True
        )
        assert "Settings saved." in text(response)
        assert set(Player.objects.with_email("bob@example.com")) == {alice, bob}

    def test_invalid_choices_are_refused(self, alice: Player) -> None:
        response = logged_in(alice).post("/settings/", {"region": "mars", "privacy": "secret", "email": "x"})
        assert "Select a valid choice." in text(response)
        alice.refresh_from_db()
        assert (alice.region, alice.privacy) == ("eu", "public")

    def test_going_private_hides_the_profile(self, client: Client, alice: Player, world: dict[str, Any]) -> None:
        logged_in(alice).post("/settings/", {"region": "eu", "privacy": "private", "email": "alice@example.com"})
        assert client.get("/players/alice/").status_code == 403

    def test_a_new_region_moves_the_player_between_regional_boards(
        self, api: Api, alice: Player, game: Game, world: dict[str, Any]
    ) -> None:
        assert regional(api, game, "eu") == ["alice", "Anonymous player"]

        logged_in(alice).post("/settings/", {"region": "na", "privacy": "public", "email": "alice@example.com"})

        assert regional(api, game, "eu") == ["Anonymous player"]
        assert regional(api, game, "na") == ["bob", "alice"]


def regional(api: Api, game: Game, region: str) -> list[str]:
    response = api.anonymous().get(f"/api/v1/leaderboards/{game.pk}?region={region}")
    assert response.status_code == 200, response.content
    return [row["username"] for row in response.json()["rankings"]]


@pytest.mark.django_db(transaction=True)
def test_a_new_region_moves_the_player_on_the_redis_index(api: Api, rank_index: Any) -> None:
    """The same move with the Redis rank index answering: it is re-indexed after commit."""
    game = import_manifest(manifest=manifest("indexed", 2)).game
    alice, bob = make_player("alice", region="eu"), make_player("bob", region="na")
    give(alice, achievement(game, "A00"))
    give(bob, achievement(game, "A01"))
    assert regional(api, game, "eu") == ["alice"]

    logged_in(alice).post("/settings/", {"region": "na", "privacy": "public", "email": "alice@example.com"})

    assert rank_index.client.exists(Board.game(game.pk, "na").key)
    assert regional(api, game, "eu") == []
    assert sorted(regional(api, game, "na")) == ["alice", "bob"]


# --- Query counts -------------------------------------------------------------------------


@pytest.fixture
def busy(alice: Player, bob: Player, game: Game, other_game: Game) -> list[Game]:
    """Six games, alice and bob active in all of them with several unlocks each, a dozen
    more ranked players, friends and rival alerts: enough that a query per row shows."""
    games = [game, other_game] + [import_manifest(manifest=manifest(f"extra-{i}", 6)).game for i in range(4)]
    befriend(alice, bob)
    start = timezone.now() - timedelta(days=3)
    for g in games:
        for i, each in enumerate(g.achievements.all()[:4]):
            give(alice, each, at=start + timedelta(minutes=i))
            give(bob, each, at=start + timedelta(minutes=i + 30))
        record_play_session(
            player=alice,
            game=g,
            session_id="q",
            started_at=start - timedelta(hours=1),
            ended_at=start,
            source="server",
        )
    for i in range(12):
        other = make_player(f"extra{i:02d}")
        give(other, games[i % len(games)].achievements.all()[0], at=start)
        befriend(other, alice)
    record_progress(player=alice, achievement=achievement(game, "KILL_100"), value=10, source=Source.GAME_SERVER)
    for _ in range(5):
        Notification.objects.create(
            player=alice,
            kind="rival",
            payload={"rival_username": "bob", "game_slug": "star-raiders", "game_name": "Star Raiders"},
        )
    for g in games:
        refresh_rarity(str(g.pk))
    take_snapshots(start.date())
    return games


@pytest.mark.parametrize(
    ("url", "limit"),
    [
        ("/", 10),
        ("/players/alice/", 17),
        ("/players/alice/games/star-raiders/", 15),
        ("/games/star-raiders/", 11),
        ("/dashboard/", 16),
        ("/friends/", 9),
        ("/compare/star-raiders/alice/bob/", 10),
        ("/share/{share}/", 5),
    ],
)
def test_pages_stay_within_a_fixed_number_of_queries(
    alice: Player, busy: list[Game], django_assert_max_num_queries: Any, url: str, limit: int
) -> None:
    """Limits are what each page needs (session, user, a few aggregates, the board) plus two;
    with six games, a dozen friends and many unlocks, a query per row would exceed them."""
    client = logged_in(alice)
    url = url.format(share=Unlock.objects.filter(player=alice).first().pk)
    client.get(url)  # warm the session and any per-process caches
    with django_assert_max_num_queries(limit):
        response = client.get(url)
    assert response.status_code == 200


def test_demo_members_joined_before_their_first_unlock(db: Any) -> None:
    from django.core.management import call_command
    from django.db.models import Min

    call_command("seed_demo", players=12, days=20, stdout=io.StringIO())

    players = Player.objects.annotate(first=Min("unlocks__unlocked_at")).filter(first__isnull=False)
    assert players.count() >= 10
    assert [p.username for p in players if p.created > p.first or p.date_joined > p.first] == []
