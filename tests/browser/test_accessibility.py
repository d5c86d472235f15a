"""Every main page passes axe-core's accessibility checks in a real browser (Playwright
driving Debian's Chromium) with no serious or critical violation, signed out and signed in.

axe-core is vendored (static/vendor/axe-core-*) and injected by the test alone. The site's
Content-Security-Policy allows scripts from 'self' only, so a <script> tag with axe's text
inline (what `page.add_script_tag(path=...)` adds) is refused; `page.evaluate` runs it
through the DevTools protocol, which the page's policy does not govern, so the pages are
checked under their real policy, not a relaxed one.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from playwright import sync_api

from players.services import friend_accept, friend_request
from tests.browser.chromium import needs_chromium
from tests.browser.test_player_journey import browser, shoot  # noqa: F401  (browser: a fixture)
from tests.browser.test_studio_analytics import studio_world  # noqa: F401  (a fixture)
from tests.conftest import PASSWORD
from tracker.models import Game, Player

pytestmark = needs_chromium

AXE = next((Path(settings.BASE_DIR) / "static" / "vendor").glob("axe-core-*/axe.min.js"))
SERIOUS = ("serious", "critical")

SIGNED_OUT = [
    "/",
    "/leaderboards/",
    "/games/star-raiders/leaderboard/",
    "/seasons/",
    "/games/star-raiders/",
    "/players/pilot0/",
    "/players/pilot0/games/star-raiders/",
    "/compare/star-raiders/pilot0/pilot1/",
    "/accounts/login/",
    "/accounts/signup/",
]
SIGNED_IN = [
    "/",
    "/dashboard/",
    "/games/star-raiders/",
    "/games/star-raiders/leaderboard/",
    "/players/studio/",
    "/friends/",
    "/settings/",
    "/studio/",
    "/studio/star-raiders/",
]

RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ")),
  }));
}"""


def violations(page: Any, path: str) -> list[str]:
    """axe's serious and critical findings on the page at `path`, one line each."""
    page.goto(path)
    page.wait_for_load_state("networkidle")
    page.evaluate(AXE.read_text())
    found = page.evaluate(RUN_AXE)
    return [f"{path}: {v['id']} ({v['impact']}) {v['help']} at {v['nodes']}" for v in found if v["impact"] in SERIOUS]


@pytest.fixture
def studio_friends(studio_world: Game) -> None:  # noqa: F811
    """Every control of /friends/: a friend (compare, remove), a request to answer (accept,
    decline) and one waiting (withdraw)."""
    studio, friend, asking, asked = (
        Player.objects.get(username=name) for name in ("studio", "pilot0", "pilot1", "pilot2")
    )
    friend_accept(player=friend, friendship=friend_request(sender=studio, receiver=friend))
    friend_request(sender=asking, receiver=studio)
    friend_request(sender=studio, receiver=asked)


@pytest.mark.usefixtures("studio_friends")
def test_the_main_pages_have_no_serious_accessibility_violations(
    studio_world: Game,  # noqa: F811
    live_server: Any,
    browser: Any,  # noqa: F811
) -> None:
    found: list[str] = []
    for width, height in ((1280, 900), (390, 844)):
        context = browser.new_context(viewport={"width": width, "height": height}, base_url=live_server.url)
        context.set_default_timeout(10_000)
        page = context.new_page()
        for path in SIGNED_OUT:
            found += violations(page, path)
        page.goto("/accounts/login/")
        page.get_by_label("Username").fill("studio")
        page.get_by_label(re.compile(r"^Password:?$")).fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{live_server.url}/")
        for path in SIGNED_IN:
            found += violations(page, path)
        page.goto("/games/star-raiders/")
        shoot(page, f"game-page-{width}.png")
        context.close()

    assert found == [], "\n".join(found)


def test_axe_runs_under_the_sites_content_security_policy(
    studio_world: Game,  # noqa: F811
    live_server: Any,
    browser: Any,  # noqa: F811
) -> None:
    """A check that found nothing because axe never ran would prove nothing: on a page
    with a known fault, axe reports it."""
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    page.goto("/")
    with contextlib.suppress(sync_api.Error):
        page.add_script_tag(path=str(AXE))  # inline: the policy refuses it
    assert page.evaluate("typeof window.axe") == "undefined"
    page.evaluate(AXE.read_text())
    page.evaluate(
        "() => { const i = document.createElement('img'); i.src = '/static/favicon.svg'; document.body.append(i); }"
    )
    assert "image-alt" in [v["id"] for v in page.evaluate(RUN_AXE)]
    context.close()
