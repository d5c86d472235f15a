"""A developer reads their game's analytics in a real browser (Playwright driving Debian's
Chromium) against the live server: log in, open the studio, open the game, and every chart
is drawn under the site's Content-Security-Policy (scripts from our static files only),
beside its table, with no script error.

The screenshot lands in artifacts/screenshots/studio-analytics.png.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from playwright import sync_api

from achievements.services import import_manifest
from analytics.aggregation import catch_up
from stats.services import record_play_session
from tests.browser.chromium import needs_chromium
from tests.browser.test_player_journey import browser, charts_drawn, shoot  # noqa: F401  (browser: a fixture)
from tests.conftest import MOON_MINERS, PASSWORD, STAR_RAIDERS, make_player
from tests.helpers import give
from tracker.models import Game, GameMember

pytestmark = needs_chromium

CHARTS = 11


@pytest.fixture
def studio_world(transactional_db: Any) -> Game:
    """Star Raiders with a fortnight of play by six players, aggregated; the developer
    "studio" works on it, and Moon Miners belongs to another studio."""
    game = import_manifest(manifest=STAR_RAIDERS).game
    import_manifest(manifest=MOON_MINERS)
    developer = make_player("studio")
    developer.is_staff = True
    developer.save(update_fields=["is_staff"])
    # A transactional test starts from empty tables: the roles' migration rows are gone.
    developer.groups.add(Group.objects.get_or_create(name="Game developers")[0])
    GameMember.objects.create(game=game, player=developer)
    now = timezone.now()
    order = ["FIRST_FLIGHT", "KILL_100", "ACE_PILOT", "SECRET_ENDING"]
    for n in range(6):
        player = make_player(f"pilot{n}")
        first = now - timedelta(days=14 - 2 * n, hours=3)
        for visit in range(4 - n // 2):
            start = first + timedelta(days=visit * (n + 1))
            if start + timedelta(hours=1) >= now:
                break
            record_play_session(
                player=player,
                game=game,
                session_id=f"s{visit}",
                started_at=start,
                ended_at=start + timedelta(hours=1),
                source="server",
            )
            if visit < len(order) - n // 3:
                give(player, game.achievements.get(api_name=order[visit]), at=start + timedelta(minutes=30 + n))
    catch_up(max_days=30)
    return game


def test_a_developer_reads_their_games_analytics_with_every_chart_drawn(
    studio_world: Game,
    live_server: Any,
    browser: Any,  # noqa: F811
) -> None:
    url = live_server.url
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # A script the Content-Security-Policy refused shows on the console, not as a page error.
    page.on(
        "console", lambda message: errors.append(message.text) if "Content Security Policy" in message.text else None
    )
    # Every file the page asks for is there (browsers ask for a favicon on their own).
    page.on(
        "response",
        lambda response: (
            errors.append(f"{response.status} {response.url}")
            if response.status >= 400 and not response.url.endswith("/favicon.ico")
            else None
        ),
    )

    page.goto(f"{url}/accounts/login/?next=/studio/")
    page.get_by_label("Username").fill("studio")
    page.get_by_label(re.compile(r"^Password:?$")).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{url}/studio/")
    sync_api.expect(page.get_by_role("heading", name="Your studio")).to_be_visible()
    sync_api.expect(page.get_by_role("link", name=re.compile("Moon Miners"))).to_have_count(0)

    page.get_by_role("link", name=re.compile("Star Raiders")).click()
    page.wait_for_url(f"{url}/studio/star-raiders/")
    sync_api.expect(page.get_by_role("heading", name="Star Raiders analytics")).to_be_visible()
    sync_api.expect(page.locator("[data-metric=players]")).to_have_text("6")
    page.wait_for_function(
        "n => [...document.querySelectorAll('canvas[data-chart]')].filter(c => Chart.getChart(c)).length === n",
        arg=CHARTS,
    )
    assert charts_drawn(page) == [True] * CHARTS
    # Each chart has its table: the achievements', with the hidden one shown to its studio.
    achievements = page.locator("table[data-table=achievements]")
    sync_api.expect(achievements).to_contain_text("The Truth")
    sync_api.expect(achievements.locator("tbody tr")).to_have_count(4)
    shoot(page, "studio-analytics.png")

    # A shorter range redraws the page with the same charts.
    page.get_by_role("link", name="7 days").click()
    page.wait_for_load_state()
    sync_api.expect(page.locator("table[data-table=daily] tbody tr")).to_have_count(7)
    assert charts_drawn(page) == [True] * CHARTS

    # The CSV link downloads the table the page shows.
    with page.expect_download() as download:
        page.locator("table[data-table=funnel] caption a").click()
    assert download.value.suggested_filename.startswith("star-raiders-funnel-")

    context.close()
    assert errors == []
