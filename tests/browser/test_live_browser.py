"""Live notifications in a real browser (Playwright driving Debian's Chromium).

pytest-django's `live_server` speaks WSGI only and cannot hold WebSockets, so the pages are
served by a real Daphne subprocess reading the (transactional) test database. Unlocks go
through its API with a game key, as a game server would send them, while the pages stay
open: a logged-in player sees a toast, and a board page re-ranks its rows without reloading.

Screenshots land in artifacts/screenshots/live-toast.png and live-board.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright import sync_api

from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, needs_chromium
from tests.conftest import PASSWORD, achievement, make_player
from tests.helpers import UNLOCK_URL, give
from tests.servers import Server, daphne, post_json, running
from tracker.models import Game, Player

LIVE_WAIT_MS = 5_000

pytestmark = [
    needs_chromium,
    pytest.mark.django_db(transaction=True),
]


@dataclass(frozen=True)
class World:
    """Star Raiders' board: bob 25 (#1), vega 15 (#2), alice 10 (#3)."""

    game: Game
    key: str
    alice: Player
    bob: Player
    vega: Player


@pytest.fixture
def world(alice: Player, bob: Player, game: Game, game_key: str) -> World:
    vega = make_player("vega", region="na")
    give(bob, achievement(game, "ACE_PILOT"))
    give(vega, achievement(game, "KILL_100"))
    give(alice, achievement(game, "FIRST_FLIGHT"))
    return World(game, game_key, alice, bob, vega)


@pytest.fixture
def site(rank_index: Any, world: World, tmp_path: Path) -> Iterator[Server]:
    """Daphne serving pages, API and sockets (it reads ranks from the Redis index, which
    `rank_index` keeps true)."""
    with running({"daphne": daphne}, tmp_path) as [server]:
        yield server


@pytest.fixture
def browser(site: Server) -> Iterator[Any]:
    """Started after the data and the server exist: while Playwright's loop runs in this
    thread, Django refuses ORM calls here, and the tests make none."""
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def new_page(browser: Any, errors: list[str]) -> Any:
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page


def server_unlocks(site: Server, world: World, player: Player, api_name: str) -> None:
    status, body = post_json(
        f"{site.http}{UNLOCK_URL}",
        {"player_id": str(player.pk), "achievement": api_name},
        {"Authorization": f"Api-Key {world.key}"},
    )
    assert status == 201, body


def wait_live(page: Any) -> None:
    """live.js marks the body once its socket is open: events sent before would be lost."""
    sync_api.expect(page.locator("body")).to_have_attribute("data-live", "on")


def shoot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)
    assert (SCREENSHOTS / name).stat().st_size > 0


def board_rows(page: Any) -> list[tuple[str, str, str, str]]:
    """(player id, rank, name, points) of each row, top to bottom."""
    return [
        tuple(row)
        for row in page.evaluate(
            """() => [...document.querySelectorAll('table[data-board-stream] tbody tr[data-player]')]
                 .map(r => [r.dataset.player, ...[...r.children].map(c => c.textContent.trim())])"""
        )
    ]


def test_a_logged_in_player_sees_a_toast_when_an_unlock_lands(site: Server, world: World, browser: Any) -> None:
    errors: list[str] = []
    page = new_page(browser, errors)
    page.goto(f"{site.http}/accounts/login/?next=/players/alice/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label(re.compile(r"^Password:?$")).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{site.http}/players/alice/")
    wait_live(page)
    sync_api.expect(page.locator(".toast")).to_have_count(0)

    server_unlocks(site, world, world.alice, "ACE_PILOT")  # 10 -> 35: from #3 to #1

    toast = page.locator(".toast", has_text="Ace Pilot")
    sync_api.expect(toast).to_be_visible(timeout=LIVE_WAIT_MS)
    sync_api.expect(toast).to_contain_text("Achievement unlocked!")
    sync_api.expect(toast).to_contain_text("25 pts")
    sync_api.expect(page.locator(".toast", has_text="Up 2 to #1.")).to_be_visible(timeout=LIVE_WAIT_MS)
    shoot(page, "live-toast.png")
    assert errors == []


def test_a_board_page_moves_a_rising_players_row_without_reloading(site: Server, world: World, browser: Any) -> None:
    errors: list[str] = []
    page = new_page(browser, errors)  # anonymous: boards are public
    page.goto(f"{site.http}/games/star-raiders/leaderboard/")
    alice, bob, vega = (str(p.pk) for p in (world.alice, world.bob, world.vega))
    assert board_rows(page) == [(bob, "1", "bob", "25"), (vega, "2", "vega", "15"), (alice, "3", "alice", "10")]
    wait_live(page)
    page.evaluate("() => { window.sameDocument = true; }")

    server_unlocks(site, world, world.alice, "ACE_PILOT")  # 10 -> 35

    alice_row = page.locator(f'table[data-board-stream] tr[data-player="{alice}"]')
    sync_api.expect(alice_row.locator("td.rank")).to_have_text("1", timeout=LIVE_WAIT_MS)
    sync_api.expect(alice_row.locator("td.num")).to_have_text("35")
    assert board_rows(page) == [(alice, "1", "alice", "35"), (bob, "2", "bob", "25"), (vega, "3", "vega", "15")]
    assert page.evaluate("() => window.sameDocument") is True, "the page reloaded"
    shoot(page, "live-board.png")
    assert errors == []
