"""The feed's pages stay put while new activity arrives (docs/feed.md, "The cursor"): a
page continues strictly after the last item of the page before, in (at, kind, id) order,
so activity recorded between two reads never repeats an item already read nor hides one
still to come, as an offset would (a new item on top pushes the old ones down a place).
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from achievements.models import Award
from achievements.services import import_manifest, save_season
from leaderboards.services import close_season
from tests.conftest import Api, make_player
from tests.helpers import give
from tests.test_feed_api import FEED_QUEST, award, feed_of, passed, step
from tests.test_friends import befriend
from tracker.models import Game, Player


def ago(minutes: float) -> datetime:
    return timezone.now() - timedelta(minutes=minutes)


def key(item: dict[str, Any]) -> tuple[datetime, str, str]:
    """What tells two items apart: when, what and about whom (an unlock: which one)."""
    detail = item.get("achievement", {}).get("id") or item.get("award") or item.get("season", {}).get("id") or ""
    return (datetime.fromisoformat(item["at"]), item["kind"], f"{item['player']['username']}:{detail}")


def pages(api: Api, player: Player, limit: int, between: Any = None) -> list[list[dict[str, Any]]]:
    """Every page by `next`, calling `between()` after each read."""
    read, cursor = [], None
    while True:
        page = feed_of(api, player, limit=limit, **({"cursor": cursor} if cursor else {}))
        read.append(page["results"])
        if between:
            between()
        cursor = page["next"]
        if cursor is None:
            return read


@pytest.fixture
def history(alice: Player, bob: Player) -> Game:
    """alice's friends bob and dana, with 30 items of every kind over the last hours."""
    quest = import_manifest(manifest=FEED_QUEST).game
    dana = make_player("dana")
    befriend(alice, bob)
    befriend(dana, alice)
    season = save_season(game=quest, name="Old Cup", starts_at=ago(600), ends_at=ago(500))
    give(dana, step(quest, 20), at=ago(550))
    close_season(season=season, now=ago(400))
    for i in range(12):
        moment = ago(300 - 10 * i)
        give(bob, step(quest, i), at=moment)
        give(dana, step(quest, i), at=moment)  # the very same moments as bob's
    moment = ago(100)
    for friend in (bob, dana):
        award(friend, quest, Award.Kind.BEATEN, moment)
        passed(alice, friend, quest, moment)
    return quest


@pytest.mark.django_db
def test_activity_recorded_between_pages_neither_repeats_nor_hides_an_item(
    api: Api, alice: Player, bob: Player, history: Game
) -> None:
    before = [key(item) for item in feed_of(api, alice, limit=100)["results"]]
    dana = Player.objects.get(username="dana")
    moments = iter(range(1, 1000))

    def new_activity() -> None:
        """Everything that may happen meanwhile, now: unlocks, an award, a pass, a season
        closing with both in its top ten; and an unlock recorded with an older time (an
        import), which is new and may show on a later page, but moves no other item."""
        n = next(moments)
        give(bob, step(history, 12 + n % 8))
        give(dana, step(history, 12 + n % 8))
        passed(alice, dana, history, timezone.now())
        if n == 2:
            award(bob, history, Award.Kind.MASTERED, timezone.now())
        if n == 3:
            season = save_season(
                game=history, name="Snap Cup", starts_at=ago(5), ends_at=timezone.now() + timedelta(minutes=5)
            )
            give(bob, step(history, 28))
            close_season(season=season)
        if n == 4:
            give(dana, step(history, 27), at=ago(200))

    read = pages(api, alice, limit=3, between=new_activity)  # odd: pages split moments

    seen = [key(item) for page in read for item in page]
    old = [k for k in seen if k in set(before)]
    assert old == before  # every item there was, once each, in order
    assert len(seen) == len(set(seen))  # nothing twice
    # Newer activity waits for a fresh first page: none of it slipped into the later pages.
    assert max(k[0] for k in seen) == before[0][0]
    assert len(before) == 30


@pytest.mark.django_db(transaction=True)
def test_pages_read_while_friends_keep_unlocking_list_every_older_item_once(
    api: Api, alice: Player, bob: Player, history: Game
) -> None:
    before = [key(item) for item in feed_of(api, alice, limit=100)["results"]]
    committed = threading.Event()
    stop = threading.Event()

    def keep_unlocking() -> None:
        """Another process's game server: bob's and dana's unlocks, one after the other."""
        try:
            players = [bob, Player.objects.get(username="dana")]
            for i in range(12, 29):
                for player in players:
                    if stop.is_set():
                        return
                    give(player, step(history, i))
                    committed.set()
        finally:
            connection.close()

    def after_one_more_unlock() -> None:
        committed.clear()
        if writer.is_alive():
            committed.wait(timeout=10)

    writer = threading.Thread(target=keep_unlocking)
    writer.start()
    try:
        read = pages(api, alice, limit=3, between=after_one_more_unlock)
    finally:
        stop.set()
        writer.join()

    seen = [key(item) for page in read for item in page]
    assert len(read) >= 10  # 30 items or more, three a page, each page read after another unlock
    assert [k for k in seen if k in set(before)] == before
    assert len(seen) == len(set(seen))
