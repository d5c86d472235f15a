"""The embeddable profile card (`/players/<username>/card.svg` and `card.png`): what it
shows, how caches keep it (ETag, 304, Cache-Control), who has one, hostile names, the
settings page's snippets and the profile's link preview."""

from __future__ import annotations

import dataclasses
import io
import xml.etree.ElementTree as ET
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from achievements.models import Award
from achievements.tasks import refresh_rarity
from leaderboards import index
from leaderboards.services import hide_player
from players import profilecard
from tests.conftest import achievement, make_player
from tests.helpers import give, logged_in
from tracker.models import Friendship, Game, Player, Privacy

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "a<b>&\"c'"


def card_url(player: Player | str, kind: str = "svg", **query: str) -> str:
    username = player if isinstance(player, str) else player.username
    url = reverse(f"profile-card-{kind}", args=[username])
    return url + "".join(f"{'?' if i == 0 else '&'}{k}={v}" for i, (k, v) in enumerate(query.items()))


def svg_texts(response: Any) -> list[str]:
    """The lines of text an SVG card shows, in order (parsing fails on broken markup)."""
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("image/svg+xml")
    root = ET.fromstring(response.content)
    return [element.text or "" for element in root.iter(f"{SVG}text")]


def figures(texts: list[str]) -> dict[str, str]:
    """Each tile's label and the figure drawn above it."""
    return {
        label: texts[i - 1]
        for i, label in enumerate(texts)
        if label in ("POINTS", "ACHIEVEMENTS", "MASTERED", "BEATEN")
    }


def png_of(response: Any) -> Image.Image:
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image


def award(player: Player, game: Game, kind: str) -> None:
    """An award as the awards' write path leaves it (test set-up, not the subject)."""
    Award.objects.create(player=player, game=game, kind=kind, awarded_at=timezone.now())


def befriend(a: Player, b: Player) -> None:
    Friendship.objects.create(requester=a, addressee=b, status=Friendship.Status.ACCEPTED)


def set_privacy(player: Player, privacy: str) -> None:
    player.privacy = privacy
    player.save(update_fields=["privacy"])


@pytest.fixture
def played(alice: Player, bob: Player, charlie: Player, game: Game, other_game: Game) -> None:
    """alice: First Flight and Ace Pilot in Star Raiders (35 points, 2 achievements, rank
    2), beat Star Raiders and Moon Miners and mastered Moon Miners; bob: all four Star
    Raiders achievements (100, rank 1); charlie (private): First Flight. Rarity refreshed:
    Ace Pilot, held by 2 of 3 players, is alice's rarest."""
    start = timezone.now() - timedelta(days=1)
    give(alice, achievement(game, "FIRST_FLIGHT"), at=start)
    give(alice, achievement(game, "ACE_PILOT"), at=start + timedelta(minutes=1))
    for i, name in enumerate(["FIRST_FLIGHT", "ACE_PILOT", "SECRET_ENDING", "KILL_100"]):
        give(bob, achievement(game, name), at=start + timedelta(minutes=10 + i))
    give(charlie, achievement(game, "FIRST_FLIGHT"), at=start)
    refresh_rarity(str(game.pk))
    award(alice, game, Award.Kind.BEATEN)
    award(alice, other_game, Award.Kind.BEATEN)
    award(alice, other_game, Award.Kind.MASTERED)


# --- What it shows ------------------------------------------------------------------------


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_svg_shows_the_players_figures_rank_and_rarest_achievement(
    client: Client, alice: Player, played: None, theme: str
) -> None:
    texts = svg_texts(client.get(card_url(alice, theme=theme)))

    assert "alice" in texts
    assert figures(texts) == {"POINTS": "35", "ACHIEVEMENTS": "2", "MASTERED": "1", "BEATEN": "2"}
    assert "#2 global" in texts
    assert "Ace Pilot" in texts
    assert "Star Raiders · 66.7% of players · Common" in texts


def test_the_light_and_dark_svgs_differ_only_in_colour(client: Client, alice: Player, played: None) -> None:
    light, dark = client.get(card_url(alice)), client.get(card_url(alice, theme="dark"))

    assert svg_texts(light) == svg_texts(dark)
    assert light.content != dark.content
    assert profilecard.THEMES["dark"].background.encode() in dark.content


def test_the_default_theme_is_light(client: Client, alice: Player, played: None) -> None:
    assert client.get(card_url(alice)).content == client.get(card_url(alice, theme="light")).content


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_png_is_a_1200_by_630_image_in_the_themes_colours(
    client: Client, alice: Player, played: None, theme: str
) -> None:
    image = png_of(client.get(card_url(alice, "png", theme=theme)))

    assert (image.format, image.size) == ("PNG", (1200, 630))
    background = profilecard.THEMES[theme].background
    assert image.convert("RGB").getpixel((2, 2)) == tuple(int(background[i : i + 2], 16) for i in (1, 3, 5))
    assert len(image.getcolors(maxcolors=1_000_000) or []) > 10  # drawn on, not a blank canvas


def test_equal_facts_draw_byte_equal_pngs_as_a_strong_etag_promises(alice: Player, played: None) -> None:
    facts = profilecard.facts_of(alice)
    more = dataclasses.replace(facts, points=facts.points + 1)

    assert profilecard.draw_png(facts, "light") == profilecard.draw_png(facts, "light")
    assert profilecard.draw_png(facts, "light") != profilecard.draw_png(more, "light")


def test_a_theme_that_does_not_exist_is_a_400(client: Client, alice: Player, played: None) -> None:
    for kind in ("svg", "png"):
        response = client.get(card_url(alice, kind, theme="purple"))
        assert response.status_code == 400
        assert b"light or dark" in response.content


def test_a_player_with_nothing_yet_has_a_card_of_zeros(client: Client, alice: Player) -> None:
    texts = svg_texts(client.get(card_url(alice)))

    assert figures(texts) == {"POINTS": "0", "ACHIEVEMENTS": "0", "MASTERED": "0", "BEATEN": "0"}
    assert "Unranked" in texts and "None yet" in texts


def test_a_hidden_rarest_achievement_is_masked_for_everyone_even_its_owner(
    client: Client, alice: Player, game: Game, played: None
) -> None:
    give(alice, achievement(game, "SECRET_ENDING"))
    refresh_rarity(str(game.pk))

    for viewer in (client, logged_in(alice)):
        response = viewer.get(card_url(alice))
        texts = svg_texts(response)
        assert "Hidden achievement" in texts
        assert "Star Raiders · 66.7% of players · Common" in texts
        assert b"The Truth" not in response.content


def test_the_username_is_found_ignoring_case(client: Client, alice: Player, played: None) -> None:
    assert "alice" in svg_texts(client.get(card_url("ALICE")))


# --- Caching -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["svg", "png"])
def test_a_card_carries_a_strong_etag_and_may_be_kept_by_shared_caches_for_five_minutes(
    client: Client, alice: Player, played: None, kind: str
) -> None:
    response = client.get(card_url(alice, kind))

    assert response.status_code == 200
    assert response["Cache-Control"] == "public, max-age=300"
    etag = response["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")


@pytest.mark.parametrize("kind", ["svg", "png"])
def test_a_matching_if_none_match_is_a_304_with_no_body(client: Client, alice: Player, played: None, kind: str) -> None:
    etag = client.get(card_url(alice, kind))["ETag"]

    again = client.get(card_url(alice, kind), HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    assert again["Cache-Control"] == "public, max-age=300"
    listed = client.get(card_url(alice, kind), HTTP_IF_NONE_MATCH=f'"other", {etag}')
    assert listed.status_code == 304


@pytest.mark.parametrize("kind", ["svg", "png"])
def test_a_stale_if_none_match_gets_the_card(client: Client, alice: Player, played: None, kind: str) -> None:
    response = client.get(card_url(alice, kind), HTTP_IF_NONE_MATCH='"not-this-one"')

    assert response.status_code == 200
    assert response.content


def test_the_etag_stays_while_nothing_on_the_card_changes(
    client: Client, alice: Player, bob: Player, other_game: Game, played: None
) -> None:
    first = client.get(card_url(alice))["ETag"]

    give(bob, achievement(other_game, "FIRST_ORE"))  # bob, already ahead, moves further ahead

    assert client.get(card_url(alice))["ETag"] == first
    assert logged_in(alice).get(card_url(alice))["ETag"] == first  # one image for every viewer


def test_a_new_unlock_changes_the_card_and_its_etag(client: Client, alice: Player, game: Game, played: None) -> None:
    before = client.get(card_url(alice))

    give(alice, achievement(game, "KILL_100"))

    after = client.get(card_url(alice), HTTP_IF_NONE_MATCH=before["ETag"])
    assert after.status_code == 200
    assert after["ETag"] != before["ETag"]
    assert figures(svg_texts(after))["POINTS"] == "50"


def test_a_new_award_changes_the_card_and_its_etag(client: Client, alice: Player, game: Game, played: None) -> None:
    before = client.get(card_url(alice, "png"))

    award(alice, game, Award.Kind.MASTERED)

    after = client.get(card_url(alice, "png"), HTTP_IF_NONE_MATCH=before["ETag"])
    assert after.status_code == 200
    assert after.content != before.content
    assert figures(svg_texts(client.get(card_url(alice))))["MASTERED"] == "2"


def test_being_passed_on_the_global_board_changes_the_card(
    client: Client, alice: Player, bob: Player, game: Game, other_game: Game
) -> None:
    give(alice, achievement(other_game, "FIRST_ORE"))  # 5 points
    before = client.get(card_url(alice))
    assert "#1 global" in svg_texts(before)

    give(bob, achievement(game, "FIRST_FLIGHT"))  # 10 points

    after = client.get(card_url(alice), HTTP_IF_NONE_MATCH=before["ETag"])
    assert after.status_code == 200
    assert "#2 global" in svg_texts(after)


def test_each_format_and_theme_has_its_own_etag(client: Client, alice: Player, played: None) -> None:
    tags = {
        client.get(card_url(alice, kind, theme=theme))["ETag"] for kind in ("svg", "png") for theme in ("light", "dark")
    }
    assert len(tags) == 4


def test_a_304_draws_nothing_and_a_png_is_drawn_once(
    client: Client, alice: Player, played: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: list[str] = []
    draw = profilecard.draw_png
    monkeypatch.setattr(profilecard, "draw_png", lambda facts, theme: drawn.append(theme) or draw(facts, theme))

    etag = client.get(card_url(alice, "png"))["ETag"]
    assert client.get(card_url(alice, "png")).status_code == 200
    assert client.get(card_url(alice, "png"), HTTP_IF_NONE_MATCH=etag).status_code == 304

    assert drawn == ["light"]


def test_the_rank_is_read_from_the_rank_index_and_from_sql_alike(
    rank_index: Any, alice: Player, bob: Player, game: Game, monkeypatch: pytest.MonkeyPatch
) -> None:
    give(alice, achievement(game, "FIRST_FLIGHT"))
    give(bob, achievement(game, "ACE_PILOT"))
    client = Client()

    from_index = client.get(card_url(alice))
    monkeypatch.setattr(index, "redis_store", lambda: None)
    from_sql = client.get(card_url(alice))

    assert "#2 global" in svg_texts(from_index)
    assert from_sql["ETag"] == from_index["ETag"]


def test_a_card_costs_the_same_few_queries_however_much_the_player_holds(
    client: Client, alice: Player, game: Game, other_game: Game, played: None
) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(card_url(alice, "png")).status_code == 200
        return len(captured)

    before = queries()
    for name in ("SECRET_ENDING", "KILL_100"):
        give(alice, achievement(game, name))
    give(alice, achievement(other_game, "FIRST_ORE"))
    assert Award.objects.filter(player=alice, kind=Award.Kind.MASTERED).count() == 2  # both sets held

    assert queries() == before <= 6


# --- Who has a card -----------------------------------------------------------------------


@pytest.fixture
def cast(alice: Player, bob: Player, game: Game) -> dict[str, Client]:
    """dana with 10 points; the viewers: anyone, alice (dana's friend), bob (a stranger)
    and dana herself."""
    dana = make_player("dana")
    give(dana, achievement(game, "FIRST_FLIGHT"))
    befriend(dana, alice)
    return {"anonymous": Client(), "friend": logged_in(alice), "stranger": logged_in(bob), "owner": logged_in(dana)}


VIEWERS = ["anonymous", "friend", "stranger", "owner"]


@pytest.mark.parametrize("viewer", VIEWERS)
@pytest.mark.parametrize("kind", ["svg", "png"])
def test_a_public_players_card_is_shown_to_everyone(cast: dict[str, Client], viewer: str, kind: str) -> None:
    assert cast[viewer].get(card_url("dana", kind)).status_code == 200


@pytest.mark.parametrize("viewer", VIEWERS)
@pytest.mark.parametrize("kind", ["svg", "png"])
@pytest.mark.parametrize("hidden_by", ["friends-only", "private", "moderation", "deactivation"])
def test_a_card_anyone_may_not_see_is_the_404_of_an_unknown_name_to_everyone_even_its_owner(
    cast: dict[str, Client], viewer: str, kind: str, hidden_by: str
) -> None:
    dana = Player.objects.get(username="dana")
    if hidden_by == "friends-only":
        set_privacy(dana, Privacy.FRIENDS)
    elif hidden_by == "private":
        set_privacy(dana, Privacy.PRIVATE)
    elif hidden_by == "moderation":
        hide_player(player=dana, actor=None, reason="cheating")
    else:
        dana.is_active = False
        dana.save(update_fields=["is_active"])

    response = cast[viewer].get(card_url("dana", kind))
    unknown = cast[viewer].get(card_url("nobody-by-this-name", kind))

    assert response.status_code == unknown.status_code == 404
    assert response.content == unknown.content
    assert "ETag" not in response and "Cache-Control" not in response


# --- Hostile text -------------------------------------------------------------------------


def test_markup_in_a_username_is_text_on_the_card(client: Client, game: Game) -> None:
    hostile = make_player(HOSTILE)
    give(hostile, achievement(game, "FIRST_FLIGHT"))

    response = client.get(card_url(hostile))

    texts = svg_texts(response)  # parses: nothing broke the markup
    assert HOSTILE in texts
    root = ET.fromstring(response.content)
    assert {element.tag.removeprefix(SVG) for element in root.iter()} == {"svg", "title", "g", "rect", "text"}
    assert root.find(f"{SVG}title").text.startswith(f"{HOSTILE} on Questboard")
    assert png_of(client.get(card_url(hostile, "png"))).size == (1200, 630)


def test_markup_and_control_characters_in_an_achievement_name_are_text_on_the_card(
    client: Client, alice: Player, game: Game
) -> None:
    ace = achievement(game, "ACE_PILOT")
    ace.name = "</text><script>alert(1)</script>\x01&amp;"
    ace.save(update_fields=["name"])
    give(alice, ace)

    texts = svg_texts(client.get(card_url(alice)))

    assert "</text><script>alert(1)</script>&amp;" in texts


# --- The snippets on the settings page ----------------------------------------------------


class Inputs(HTMLParser):
    """Each input's value by id, the copy buttons' targets, images and scripts of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self.copies: list[str] = []
        self.images: list[str] = []
        self.scripts: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "input" and attributes.get("id"):
            self.values[attributes["id"] or ""] = attributes.get("value") or ""
        elif tag == "button" and attributes.get("data-copy"):
            self.copies.append(attributes["data-copy"] or "")
        elif tag == "img":
            self.images.append(attributes.get("src") or "")
        elif tag == "script":
            self.scripts.append(attributes.get("src"))


def settings_page(client: Client, **extra: Any) -> Inputs:
    response = client.get("/settings/", **extra)
    assert response.status_code == 200
    page = Inputs()
    page.feed(response.content.decode())
    return page


def test_settings_offer_markdown_html_and_bbcode_snippets_with_absolute_urls(alice: Player) -> None:
    page = settings_page(logged_in(alice))

    card, profile = "http://testserver/players/alice/card", "http://testserver/players/alice/"
    assert page.values["card-markdown"] == f"[![alice on Questboard]({card}.svg)]({profile})"
    assert page.values["card-html"] == (
        f'<a href="{profile}"><img src="{card}.svg" alt="alice on Questboard" width="600" height="315"></a>'
    )
    assert page.values["card-bbcode"] == f"[url={profile}][img]{card}.png[/img][/url]"
    assert page.copies == ["#card-markdown", "#card-html", "#card-bbcode"]
    assert "/players/alice/card.svg" in " ".join(page.images)
    assert "/static/js/copy.js" in page.scripts and None not in page.scripts  # no inline script


def test_the_snippets_name_the_host_and_scheme_the_page_was_asked_on(alice: Player, settings: Any) -> None:
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "quests.example"]

    page = settings_page(logged_in(alice), HTTP_HOST="quests.example", secure=True)

    assert page.values["card-bbcode"] == (
        "[url=https://quests.example/players/alice/][img]https://quests.example/players/alice/card.png[/img][/url]"
    )


def test_a_player_without_a_card_gets_the_snippets_and_is_told_why_there_is_no_preview(alice: Player) -> None:
    set_privacy(alice, Privacy.FRIENDS)
    client = logged_in(alice)

    response = client.get("/settings/")
    page = settings_page(client)

    assert "card-markdown" in page.values
    assert not any("card." in src for src in page.images)
    assert "shown only while your profile is public" in response.content.decode()


def test_the_snippets_of_a_hostile_name_paste_as_they_read(db: Any) -> None:
    hostile = make_player(HOSTILE)

    page = settings_page(logged_in(hostile))

    html = page.values["card-html"]
    assert 'alt="a&lt;b&gt;&amp;&quot;c&#x27; on Questboard"' in html
    assert "<b>" not in html
    assert page.values["card-markdown"].startswith(f"[![{HOSTILE} on Questboard](http://testserver/players/")


# --- The profile's link preview -----------------------------------------------------------


class Meta(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.meta: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        name = attributes.get("property") or attributes.get("name")
        if tag == "meta" and name:
            self.meta[name] = attributes.get("content") or ""


def profile_meta(client: Client, username: str) -> dict[str, str]:
    response = client.get(f"/players/{username}/")
    assert response.status_code == 200
    parser = Meta()
    parser.feed(response.content.decode())
    return parser.meta


def test_a_public_profile_previews_as_its_card(client: Client, alice: Player, played: None) -> None:
    meta = profile_meta(client, "alice")

    assert meta["og:image"] == "http://testserver/players/alice/card.png"
    assert meta["twitter:image"] == meta["og:image"]
    assert meta["twitter:card"] == "summary_large_image"
    assert meta["og:url"] == "http://testserver/players/alice/"
    assert meta["og:title"] == "alice on Questboard"
    assert meta["og:description"] == "35 points · 2 achievements · #2 global"
    image = png_of(client.get(card_url(alice, "png")))
    assert (meta["og:image:width"], meta["og:image:height"]) == tuple(str(side) for side in image.size)


@pytest.mark.parametrize("hidden_by", ["friends-only", "private", "moderation"])
def test_a_profile_without_a_card_has_no_preview_image(alice: Player, bob: Player, hidden_by: str) -> None:
    if hidden_by == "friends-only":
        set_privacy(alice, Privacy.FRIENDS)
        befriend(alice, bob)
        viewer = logged_in(bob)
    elif hidden_by == "private":
        set_privacy(alice, Privacy.PRIVATE)
        viewer = logged_in(alice)
    else:
        hide_player(player=alice, actor=None, reason="cheating")
        viewer = Client()

    meta = profile_meta(viewer, "alice")

    assert not {"og:image", "twitter:image", "og:title"} & set(meta)
