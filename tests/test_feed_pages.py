"""The friends' feed in the browser (docs/feed.md): the dashboard shows its first page, each
kind of item in words with the friend's and the game's links, hidden achievements masked;
older pages at /dashboard/feed/ by their cursor; and static/js/live.js reloads the
dashboard's feed when `feed.updated` or `rival.passed` arrives (run under Node with a
stand-in socket and fetch, as tests/test_live_js.py runs it)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from achievements.models import Award
from achievements.services import import_manifest, save_season
from leaderboards.services import close_season
from tests.conftest import achievement
from tests.helpers import give
from tests.test_feed_api import FEED_QUEST, ago, award, passed, step
from tests.test_friends import befriend
from tests.test_player_pages import logged_in, text
from tracker.models import Game, Player

NODE = shutil.which("node")
LIVE_JS = Path(settings.BASE_DIR) / "static" / "js" / "live.js"


@pytest.fixture
def quest(db: Any) -> Game:
    return import_manifest(manifest=FEED_QUEST).game


def feed_text(page: str) -> str:
    """The words of the dashboard's feed block, spaces squeezed."""
    block = page[page.index("data-feed") : page.index("</div>", page.index("data-feed"))]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", block)).strip()


@pytest.mark.django_db
def test_the_dashboard_tells_each_kind_of_a_friends_activity(alice: Player, bob: Player, quest: Game) -> None:
    befriend(alice, bob)
    season = save_season(game=quest, name="Autumn Cup", starts_at=ago(10), ends_at=ago(5))
    give(bob, step(quest, 3), at=ago(6))
    give(bob, achievement(quest, "SECRET"), at=ago(5.5))
    award(bob, quest, Award.Kind.MASTERED, ago(3))
    passed(alice, bob, quest, ago(2), points=(48, 7))
    close_season(season=season, now=ago(1))

    page = logged_in(alice).get("/dashboard/").content.decode()
    words = feed_text(page)

    assert 'data-feed-live="/dashboard/feed/"' in page
    assert "bob finished #1 in Autumn Cup ( Feed Quest ) with 48 pts" in words
    assert "bob passed you in Feed Quest (48 vs your 7)" in words
    assert "bob mastered Feed Quest" in words
    assert "bob unlocked Hidden achievement (40 pts" in words  # masked: alice has not found it
    assert "The Hidden Door" not in page
    assert "bob unlocked Step 3 (8 pts" in words
    assert words.index("finished") < words.index("passed") < words.index("mastered") < words.index("Step 3")
    assert 'href="/players/bob/"' in page and 'href="/games/feed-quest/"' in page


@pytest.mark.django_db
def test_older_activity_is_a_page_away_and_a_forged_cursor_is_a_404(alice: Player, bob: Player, quest: Game) -> None:
    befriend(alice, bob)
    for i in range(25):
        give(bob, step(quest, i), at=ago(25 - i))
    client = logged_in(alice)

    first = client.get("/dashboard/").content.decode()
    older = re.search(r'href="(/dashboard/feed/\?cursor=[^"]+)" rel="next"', first)
    assert older, "no link to older activity"
    second = client.get(older.group(1).replace("&amp;", "&"))

    words = text(second)
    assert "Step 4 " in words and "Step 0 " in words and "Step 5 " not in words  # the 5 oldest
    assert 'rel="next"' not in second.content.decode()  # the last page
    assert client.get("/dashboard/feed/?cursor=forged").status_code == 404
    assert Client().get("/dashboard/feed/").status_code == 302  # to the log-in page


# --- live.js -------------------------------------------------------------------------------

# Runs live.js on a dashboard (a [data-feed-live] block), delivers the given /ws/me/ events,
# runs the timers it set, resolves its fetch with a fresh page: prints what it fetched and
# what the feed block holds after.
HARNESS = """
const fs = require("fs"), vm = require("vm");
const [path, events] = [process.argv[1], JSON.parse(process.argv[2])];
const sockets = [], timers = [], fetched = [];
class FakeSocket {
  constructor(url) { this.url = url; this.listeners = {}; sockets.push(this); }
  addEventListener(type, listener) { (this.listeners[type] ||= []).push(listener); }
  fire(type, event) { (this.listeners[type] || []).forEach((listener) => listener(event)); }
}
const feed = { dataset: { feedLive: "/dashboard/feed/" }, children: ["old item"],
  replaceChildren(...children) { this.children = children; } };
const body = { dataset: { player: "alice" }, appendChild() {} };
const stack = { appendChild() {} };
const document = { body, querySelector: (s) => (s === "[data-feed-live]" ? feed : s === ".toast-stack" ? stack : null),
  createElement: () => ({ setAttribute() {}, append() {}, remove() {}, dataset: {} }) };
class DOMParser { parseFromString() { return { querySelector: () => ({ children: ["new item"] }) }; } }
const fetch = async (url) => { fetched.push(url); return { ok: true, text: async () => "<html></html>" }; };
vm.runInNewContext(fs.readFileSync(path, "utf8"), {
  document, location: { protocol: "https:", host: "questboard.example" }, DOMParser, fetch,
  WebSocket: FakeSocket, setTimeout: (callback) => timers.push(callback), Math, JSON, Number, Set, CSS: {},
});
sockets[0].fire("open", {});
for (const event of events) sockets[0].fire("message", { data: JSON.stringify(event) });
(async () => {
  for (const callback of timers.splice(0)) await callback();
  console.log(JSON.stringify({ fetched, feed: feed.children }));
})();
"""


def live_js_after(events: list[dict[str, Any]]) -> dict[str, Any]:
    done = subprocess.run(
        [NODE, "-e", HARNESS, str(LIVE_JS), json.dumps(events)], capture_output=True, text=True, timeout=30, check=True
    )
    return json.loads(done.stdout)


@pytest.mark.skipif(NODE is None, reason="needs Node.js")
def test_a_feed_update_reloads_the_dashboards_feed_once_however_many_arrive_at_once() -> None:
    updated = {"type": "feed.updated", "data": {}}

    seen = live_js_after([updated, updated, {"type": "rival.passed", "data": {"rival_username": "bob"}}])

    assert seen == {"fetched": ["/dashboard/feed/"], "feed": ["new item"]}


@pytest.mark.skipif(NODE is None, reason="needs Node.js")
def test_other_events_leave_the_feed_alone() -> None:
    seen = live_js_after([{"type": "leaderboard.updated", "data": {"board": "global"}}])

    assert seen == {"fetched": [], "feed": ["old item"]}
