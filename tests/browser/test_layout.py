"""Every page looks right at a desktop width (1280×800) and a phone width (390×844, touch,
2× pixels) in a real browser (Playwright driving Debian's Chromium): the page never
scrolls sideways, nothing sticks out of the window or is cut off (a wide table may scroll
inside its own wrapper, which must then fit), nothing laid out side by side overlaps, and
the top bar's links are all on screen and, on the phone, tall enough to tap.

Each page is opened as the person who would see it: anonymous, a signed-in player (whose
name is long on purpose, as is a game's), a studio member, a community manager in the
admin. A full-page screenshot of every page at both widths lands in pytest's temporary
directory, or in `SCREENSHOTS_DIR` when set (`make screenshots` refreshes docs/screenshots);
the desktop shot is `<page>.png`, the phone shot `<page>-phone.png`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from achievements.models import Unlock
from achievements.services import import_manifest
from analytics.models import UnlockFlag
from leaderboards.models import Season
from players import services as friends
from players.snapshots import take_snapshots
from stats.services import record_play_session
from tests.browser.chromium import needs_chromium
from tests.browser.test_player_journey import browser  # noqa: F401  (a fixture)
from tests.browser.test_studio_analytics import studio_world  # noqa: F401  (a fixture)
from tests.conftest import make_player
from tests.helpers import give
from tracker.models import Game, Player, Privacy

pytestmark = needs_chromium

LONG_NAME = "Commander_Aurelia_Nightingale_of_the_Outer_Rim"
LONG_GAME = {
    "slug": "long-voyage",
    "name": "Chronicles of the Unreasonably Long Voyage Home",
    "description": "A game whose name, achievements and players test how the pages wrap.",
    "achievements": [
        {
            "api_name": "EVERY_CORNER",
            "name": "Cartographer of Every Single Uncharted Corner of the Known Universe",
            "description": "Visit each of the four hundred and twelve star systems without refuelling once.",
            "points": 100,
        },
        {"api_name": "HELLO", "name": "Hello", "points": 5},
    ],
}

# The most a tap target in the top bar may fall short of on a phone: WCAG 2.2's minimum
# target size (2.5.8) is 24 CSS pixels.
MIN_TAP_HEIGHT = 24


@dataclass(frozen=True)
class Viewport:
    name: str
    options: dict[str, Any]

    @property
    def width(self) -> int:
        return int(self.options["viewport"]["width"])


DESKTOP = Viewport("desktop", {"viewport": {"width": 1280, "height": 800}})
PHONE = Viewport(
    "phone",
    {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2},
)


@dataclass(frozen=True)
class Cast:
    """Who opens which page, and the ids some pages need."""

    sessions: dict[str, str]  # who -> session cookie; anonymous has none
    season_id: str
    unlock_id: int


@dataclass(frozen=True)
class Screen:
    name: str  # the screenshot's name
    who: str
    path: str
    status: int = 200


def screens(cast: Cast) -> list[Screen]:
    """Every page of the site (config/urls.py; the API docs are Swagger UI's own), as the
    person who would see it."""
    me = LONG_NAME
    return [
        Screen("home", "anonymous", "/"),
        Screen("login", "anonymous", "/accounts/login/"),
        Screen("signup", "anonymous", "/accounts/signup/"),
        Screen("game-page", "anonymous", "/games/star-raiders/"),
        Screen("long-game-page", "anonymous", "/games/long-voyage/"),
        Screen("board", "anonymous", "/games/star-raiders/leaderboard/"),
        Screen("board-regional", "anonymous", "/games/star-raiders/leaderboard/?region=oce"),
        Screen("board-seasonal", "anonymous", f"/games/star-raiders/leaderboard/?season={cast.season_id}"),
        Screen("board-global", "anonymous", "/leaderboards/"),
        Screen("seasons", "anonymous", "/seasons/"),
        Screen("profile", "anonymous", f"/players/{me}/"),
        Screen("player-game", "anonymous", f"/players/{me}/games/long-voyage/"),
        Screen("private-profile", "anonymous", "/players/hermit/", status=403),
        Screen("compare", "anonymous", f"/compare/star-raiders/{me}/pilot0/"),
        Screen("share", "anonymous", f"/share/{cast.unlock_id}/"),
        Screen("home-signed-in", "player", "/"),
        Screen("dashboard", "player", "/dashboard/"),
        Screen("friends", "player", "/friends/"),
        Screen("board-friends", "player", "/games/star-raiders/leaderboard/?friends=1"),
        Screen("settings", "player", "/settings/"),
        Screen("password-change", "player", "/accounts/password/"),
        Screen("password-changed", "player", "/accounts/password/done/"),
        Screen("studio", "studio", "/studio/"),
        Screen("studio-analytics", "studio", "/studio/star-raiders/"),
        Screen("studio-forbidden", "studio", "/studio/moon-miners/", status=403),
        Screen("admin-season-form", "manager", "/admin/leaderboards/season/add/"),
        Screen("admin-review-queue", "manager", "/admin/analytics/unlockflag/"),
    ]


@pytest.fixture
def cast(studio_world: Game) -> Cast:  # noqa: F811
    """The studio's world plus a player and a game with long names, a running season, a
    friend and requests both ways, a private player, a flagged unlock, and a community
    manager; each signed-in person gets a session."""
    long_game = import_manifest(manifest=LONG_GAME).game
    now = timezone.now()
    season = Season.objects.create(
        game=studio_world,
        name="The Grand Midwinter Cup of the Outer Rim",
        starts_at=now - timedelta(days=2),
        ends_at=now + timedelta(days=5),
    )
    player = make_player(LONG_NAME, region="oce")
    for back, api_name in ((6, "FIRST_FLIGHT"), (4, "ACE_PILOT"), (1, "KILL_100")):
        give(player, studio_world.achievements.get(api_name=api_name), at=now - timedelta(days=back))
    give(player, long_game.achievements.get(api_name="EVERY_CORNER"), at=now - timedelta(hours=2))
    record_play_session(
        player=player,
        game=long_game,
        session_id="long-1",
        started_at=now - timedelta(hours=5),
        ended_at=now - timedelta(hours=2),
        source="server",
    )
    for back in range(8):
        take_snapshots(now.date() - timedelta(days=back))
    pilots = {p.username: p for p in Player.objects.filter(username__in=["pilot0", "pilot1", "pilot2"])}
    friends.friend_accept(
        player=pilots["pilot0"], friendship=friends.friend_request(sender=player, receiver=pilots["pilot0"])
    )
    friends.friend_request(sender=pilots["pilot1"], receiver=player)
    friends.friend_request(sender=player, receiver=pilots["pilot2"])
    make_player("hermit", privacy=Privacy.PRIVATE)
    shared = Unlock.objects.get(player=player, achievement__api_name="EVERY_CORNER")
    UnlockFlag.objects.create(
        unlock=shared,
        player=player,
        game=long_game,
        achievement=shared.achievement,
        unlocked_at=shared.unlocked_at,
        score=3.0,
        evidence=[
            {"rule": "too_fast", "weight": 3.0, "detail": "Unlocked 4 s after first playing; the median is 3 h."}
        ],
    )
    manager = make_player("manager")
    manager.is_staff = manager.is_superuser = True
    manager.save(update_fields=["is_staff", "is_superuser"])
    sessions = {}
    for who, user in (("player", player), ("studio", Player.objects.get(username="studio")), ("manager", manager)):
        client = Client()
        client.force_login(user)
        sessions[who] = client.cookies[settings.SESSION_COOKIE_NAME].value
    return Cast(sessions=sessions, season_id=str(season.pk), unlock_id=shared.pk)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where the screenshots go: `SCREENSHOTS_DIR` (relative to the project) or a fresh
    temporary directory."""
    chosen = os.environ.get("SCREENSHOTS_DIR")
    directory = Path(settings.BASE_DIR) / chosen if chosen else tmp_path / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


# What a reader would see as broken, measured in the page. `width` is the window's width in
# CSS pixels (passed in: a phone browser zooms out of a page wider than its screen, which
# would widen `innerWidth` to fit the fault).
LAYOUT_PROBLEMS = """(width) => {
  const problems = [];
  const name = (el) => {
    const text = (el.innerText || el.getAttribute("aria-label") || "").trim().replace(/\\s+/g, " ").slice(0, 40);
    return el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
      [...el.classList].map(c => "." + c).join("") + (text ? ` "${text}"` : "");
  };
  const px = (n) => Math.round(n) + "px";
  const shown = (el) => {
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    return style.visibility !== "hidden" && box.width > 1 && box.height > 1;
  };

  const root = document.documentElement;
  if (root.scrollWidth > width) {
    problems.push(`the page scrolls sideways: ${px(root.scrollWidth)} wide in a ${px(width)} window`);
  }

  for (const el of document.body.querySelectorAll("*")) {
    if (!shown(el)) continue;
    const box = el.getBoundingClientRect();
    if (box.right <= 0) continue;  // moved off screen on purpose (a skip link until focused)
    const style = getComputedStyle(el);
    // Content wider than its own box: spills over its neighbours, or is cut off unless an
    // ellipsis says so, or scrolls on purpose.
    // (Form controls scroll their own text; an image-replaced button hides its text on purpose.)
    const control = el.closest("input, select, textarea") || parseFloat(style.textIndent) < 0;
    if (!control && el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1 && !["TD", "TH", "CANVAS"].includes(el.tagName)) {
      if (style.overflowX === "visible") {
        problems.push(`${name(el)} spills out of its box: ${px(el.scrollWidth)} of content in ${px(el.clientWidth)}`);
      } else if (style.overflowX !== "auto" && style.overflowX !== "scroll" && style.textOverflow !== "ellipsis") {
        problems.push(`${name(el)} cuts off its content: ${px(el.scrollWidth)} of content in ${px(el.clientWidth)}`);
      }
    }
    // The nearest ancestor that clips or scrolls sideways.
    let clip = el.parentElement;
    while (clip && getComputedStyle(clip).overflowX === "visible") clip = clip.parentElement;
    if (clip && clip !== document.body && clip !== root) {
      if (!shown(clip)) continue;  // inside a box hidden on purpose (for screen readers only)
      const overflow = getComputedStyle(clip).overflowX;
      if (overflow === "auto" || overflow === "scroll") continue;  // scrolls on purpose; the wrapper is checked
      const edge = clip.getBoundingClientRect().right;
      if (box.right > edge + 1) problems.push(`${name(el)} is cut off by ${name(clip)}: ${px(box.right)} past its edge at ${px(edge)}`);
      continue;
    }
    if (box.right > width + 1 || box.left < -1) {
      problems.push(`${name(el)} sticks out of the window: ${px(box.left)} to ${px(box.right)}`);
    }
  }

  // Things laid out side by side never overlap: the children of every flex or grid box.
  const overlap = (a, b) =>
    Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1 && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1;
  for (const box of document.body.querySelectorAll("*")) {
    if (!/(flex|grid)$/.test(getComputedStyle(box).display)) continue;
    const items = [...box.children].filter(c => shown(c) && getComputedStyle(c).position !== "absolute");
    for (let i = 0; i < items.length; i++) {
      for (let j = i + 1; j < items.length; j++) {
        if (overlap(items[i].getBoundingClientRect(), items[j].getBoundingClientRect())) {
          problems.push(`${name(items[i])} overlaps ${name(items[j])}`);
        }
      }
    }
  }
  return problems;
}"""

# The top bar's links and buttons: each one's box, and whether it is on screen.
TOP_BAR = """() => [...document.querySelectorAll(".topbar a, .topbar button")].map(el => {
  const box = el.getBoundingClientRect();
  const style = getComputedStyle(el);
  return {
    text: el.innerText.trim(), left: box.left, right: box.right, top: box.top, bottom: box.bottom,
    shown: style.visibility !== "hidden" && style.display !== "none" && box.width > 0 && box.height > 0,
  };
})"""


def top_bar_problems(page: Any, viewport: Viewport) -> list[str]:
    """The top bar's links are all on screen, none overlaps another, and on a phone each is
    tall enough to tap."""
    links = page.evaluate(TOP_BAR)
    problems = []
    for n, link in enumerate(links):
        if not link["shown"] or link["left"] < 0 or link["right"] > viewport.width:
            problems.append(f"the top bar's {link['text']!r} is off screen")
        height = link["bottom"] - link["top"]
        if viewport is PHONE and height < MIN_TAP_HEIGHT:
            problems.append(f"the top bar's {link['text']!r} is {height:.0f}px tall, under {MIN_TAP_HEIGHT}px to tap")
        for other in links[n + 1 :]:
            if min(link["right"], other["right"]) - max(link["left"], other["left"]) > 1 and (
                min(link["bottom"], other["bottom"]) - max(link["top"], other["top"]) > 1
            ):
                problems.append(f"the top bar's {link['text']!r} overlaps {other['text']!r}")
    return problems


def layout_problems(page: Any, viewport: Viewport) -> list[str]:
    problems = page.evaluate(LAYOUT_PROBLEMS, viewport.width)
    if page.locator(".topbar").count():
        problems += top_bar_problems(page, viewport)
    return problems


def new_page(browser: Any, live_server: Any, viewport: Viewport, session: str | None = None) -> Any:  # noqa: F811
    """A page in a browser window of the viewport's size, signed in with `session` if given."""
    context = browser.new_context(base_url=live_server.url, **viewport.options)
    context.set_default_timeout(15_000)
    if session:
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}])
    return context.new_page()


@pytest.fixture
def open_as(browser: Any, live_server: Any, cast: Cast) -> Iterator[Any]:  # noqa: F811
    """A page in a browser of the given size, signed in as `who` (or anonymous), one
    browser context per person and size."""
    pages: dict[tuple[str, str], Any] = {}

    def page_for(who: str, viewport: Viewport) -> Any:
        key = (who, viewport.name)
        if key not in pages:
            pages[key] = new_page(browser, live_server, viewport, cast.sessions.get(who))
        return pages[key]

    yield page_for
    for page in pages.values():
        page.context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=lambda v: v.name)
def test_every_page_fits_the_window_and_keeps_its_navigation_reachable(
    cast: Cast, open_as: Any, shots: Path, viewport: Viewport
) -> None:
    found: list[str] = []
    for screen in screens(cast):
        page = open_as(screen.who, viewport)
        response = page.goto(screen.path)
        assert response is not None and response.status == screen.status, (
            f"{screen.path}: {response and response.status}"
        )
        page.evaluate("document.fonts.ready")
        found += [f"{screen.name} ({screen.path}): {problem}" for problem in layout_problems(page, viewport)]
        shot = shots / (f"{screen.name}.png" if viewport is DESKTOP else f"{screen.name}-{viewport.name}.png")
        page.screenshot(path=str(shot), full_page=True, scale="css")
        assert shot.stat().st_size > 0

    assert found == [], "\n".join([f"(screenshots in {shots})", *found])


def test_the_layout_check_finds_what_a_reader_would_see_as_broken(
    transactional_db: Any,
    live_server: Any,
    browser: Any,  # noqa: F811
) -> None:
    """A check that found nothing because it looked at nothing would prove nothing: on a
    page given a too-wide banner, a cut-off box and overlapping links, it reports each;
    a wide table inside a scrolling wrapper is fine."""
    page = new_page(browser, live_server, PHONE)
    page.goto("/")
    assert layout_problems(page, PHONE) == []

    page.evaluate("""() => {
      const wrapper = document.createElement("div");
      wrapper.className = "table-scroll";
      wrapper.innerHTML = "<table><tr><td style='min-width: 900px'>wide on purpose</td></tr></table>";
      document.querySelector("main").append(wrapper);
    }""")
    assert layout_problems(page, PHONE) == []

    page.evaluate("""() => {
      const banner = document.createElement("p");
      banner.textContent = "A banner wider than any phone";
      banner.style.width = "600px";
      document.querySelector("main").append(banner);
      const box = document.createElement("div");
      box.style.cssText = "overflow: hidden; width: 100px";
      box.innerHTML = "<span style='display: inline-block; width: 200px'>cut</span>";
      document.querySelector("main").append(box);
      const second = document.querySelectorAll(".topbar nav a")[1];
      second.style.position = "relative";
      second.style.left = "-30px";
    }""")
    problems = "\n".join(layout_problems(page, PHONE))
    assert "the page scrolls sideways" in problems
    assert 'p "A banner wider than any phone" sticks out of the window' in problems
    assert 'span "cut" is cut off by div' in problems
    assert "the top bar's 'Leaderboards' overlaps 'Seasons'" in problems
    page.context.close()
