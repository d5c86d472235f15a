"""A new player's first visit, in a real browser (Playwright driving Debian's Chromium)
against the live server: sign up, look at the profile and dashboard, ask a demo player
to be friends, who accepts in their own browser, then compare the two.

Screenshots of each step land in artifacts/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from django.db import connections
from django.utils import timezone
from playwright import sync_api

from achievements.services import import_manifest
from achievements.tasks import refresh_rarity
from players.snapshots import take_snapshots
from stats.services import record_play_session
from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, needs_chromium
from tests.conftest import PASSWORD, STAR_RAIDERS, make_player
from tests.helpers import give
from tracker.models import Friendship, Game, Player

T = TypeVar("T")

pytestmark = needs_chromium


def off_the_loop(work: Callable[[], T]) -> T:
    """Run database work in another thread. Playwright's sync API keeps an event loop
    running in the test's thread, where Django refuses ORM calls and the after-commit
    broadcasts of an unlock (async_to_sync) cannot run."""

    def run() -> T:
        try:
            return work()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


@pytest.fixture
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def demo_world(transactional_db: Any) -> Game:
    """Star Raiders, the demo player (35 points in it, 2 h played) and two others."""
    game = import_manifest(manifest=STAR_RAIDERS).game
    demo = make_player("demo", region="eu")
    start = timezone.now() - timedelta(days=3)
    give(demo, game.achievements.get(api_name="FIRST_FLIGHT"), at=start)
    give(demo, game.achievements.get(api_name="ACE_PILOT"), at=start + timedelta(days=1))
    record_play_session(
        player=demo,
        game=game,
        session_id="demo-1",
        started_at=start - timedelta(hours=2),
        ended_at=start,
        source="server",
    )
    for name in ("vega", "orion"):
        give(make_player(name, region="na"), game.achievements.get(api_name="FIRST_FLIGHT"), at=start)
    refresh_rarity(str(game.pk))
    for back in range(4):
        take_snapshots(timezone.now().date() - timedelta(days=back))
    return game


def shoot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)
    assert (SCREENSHOTS / name).stat().st_size > 0


def charts_drawn(page: Any) -> list[bool]:
    """For each chart canvas on the page, whether Chart.js drew a chart on it."""
    return page.evaluate(
        "() => [...document.querySelectorAll('canvas[data-chart]')]"
        ".map(c => !!(window.Chart && window.Chart.getChart(c)))"
    )


def test_a_new_player_signs_up_makes_a_friend_and_compares(demo_world: Game, live_server: Any, browser: Any) -> None:
    url = live_server.url
    rookie_context = browser.new_context(viewport={"width": 1280, "height": 900})
    rookie_context.set_default_timeout(10_000)
    page = rookie_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    # Sign up.
    page.goto(f"{url}/accounts/signup/")
    sync_api.expect(page.get_by_role("heading", name="Create your profile")).to_be_visible()
    page.get_by_label("Username").fill("rookie")
    page.get_by_label("Email").fill("rookie@example.com")
    page.get_by_label("Region").select_option("eu")
    page.get_by_label(re.compile(r"^Password:?$")).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    shoot(page, "signup.png")
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url(f"{url}/dashboard/")
    sync_api.expect(page.get_by_text("Welcome to Questboard, rookie!")).to_be_visible()
    rookie = off_the_loop(lambda: Player.objects.get(username="rookie"))
    assert rookie.region == "eu"

    def report_play() -> None:
        """The game reports 2 of its 4 achievements for the newcomer: 25 + 15 points."""
        give(rookie, demo_world.achievements.get(api_name="ACE_PILOT"))
        give(rookie, demo_world.achievements.get(api_name="KILL_100"))
        take_snapshots(timezone.now().date())

    off_the_loop(report_play)

    # Profile.
    page.get_by_role("link", name="rookie", exact=True).first.click()
    page.wait_for_url(f"{url}/players/rookie/")
    sync_api.expect(page.get_by_role("heading", name="rookie", exact=True)).to_be_visible()
    cards = page.locator(".cards")
    sync_api.expect(cards).to_contain_text("Points")
    sync_api.expect(cards).to_contain_text("40")
    sync_api.expect(cards).to_contain_text("#1")
    sync_api.expect(page.get_by_text("2/4 · 50.0%")).to_be_visible()
    assert charts_drawn(page) == [True, True]
    shoot(page, "profile.png")

    # Dashboard.
    page.get_by_role("link", name="Dashboard").click()
    page.wait_for_url(f"{url}/dashboard/")
    sync_api.expect(page.get_by_role("heading", name="Your dashboard")).to_be_visible()
    sync_api.expect(page.locator("[data-total-points]")).to_have_text("40")
    sync_api.expect(page.get_by_text("Star Raiders").first).to_be_visible()
    assert charts_drawn(page) == [True, True, True]
    shoot(page, "dashboard.png")

    # A friend request to the demo player.
    page.get_by_role("link", name="Friends").click()
    page.get_by_label("Add a friend by username").fill("demo")
    page.get_by_role("button", name="Send request").click()
    sync_api.expect(page.get_by_text("Friend request sent to demo.")).to_be_visible()
    sync_api.expect(page.get_by_role("heading", name="Waiting for an answer")).to_be_visible()

    # The demo player, in another browser, logs in and accepts.
    demo_context = browser.new_context()
    demo_context.set_default_timeout(10_000)
    demo_page = demo_context.new_page()
    demo_page.goto(f"{url}/accounts/login/?next=/friends/")
    demo_page.get_by_label("Username").fill("demo")
    demo_page.get_by_label(re.compile(r"^Password:?$")).fill(PASSWORD)
    demo_page.get_by_role("button", name="Log in").click()
    demo_page.wait_for_url(f"{url}/friends/")
    sync_api.expect(demo_page.get_by_role("heading", name="Requests for you")).to_be_visible()
    demo_page.get_by_role("button", name="Accept").click()
    sync_api.expect(demo_page.get_by_text("Friend request accepted.")).to_be_visible()
    sync_api.expect(demo_page.locator("ul.people").get_by_role("link", name="rookie")).to_be_visible()
    assert off_the_loop(lambda: Friendship.objects.are_friends(rookie, Player.objects.get(username="demo")))
    demo_context.close()

    # Back to the newcomer: demo is a friend now; compare the two in Star Raiders.
    page.reload()
    friend_row = page.locator("ul.people li", has_text="demo")
    sync_api.expect(friend_row).to_be_visible()
    friend_row.get_by_label("Game to compare").select_option("star-raiders")
    friend_row.get_by_role("button", name="Compare").click()
    page.wait_for_url(f"{url}/compare/star-raiders/rookie/demo/")
    sync_api.expect(page.get_by_role("heading", name="rookie vs demo in Star Raiders")).to_be_visible()
    sync_api.expect(page.locator(".card", has_text="rookie")).to_contain_text("40 pts")
    sync_api.expect(page.locator(".card", has_text="demo")).to_contain_text("35 pts")
    ace = page.locator("tr", has_text="Ace Pilot")
    sync_api.expect(ace.locator("td.have")).to_have_count(2)
    shoot(page, "compare.png")

    # The game's board, narrowed to the newcomer and their friends with its filter.
    page.goto(f"{url}/games/star-raiders/leaderboard/")
    page.get_by_label("Who").select_option("1")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"friends=1"))
    sync_api.expect(page.locator("table.board tbody tr")).to_have_count(2)
    sync_api.expect(page.locator(".cards")).to_contain_text("#1")
    sync_api.expect(page.locator(".cards")).to_contain_text("of 2")

    rookie_context.close()
    assert errors == []
