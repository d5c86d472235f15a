"""The feed's first page, kept in the cache (tracker/feedhead.py, docs/feed.md "The first
page, kept"): it is answered without the statement while nothing changed, and after any
change a player could make, it is what the statement answers.

Every change runs through the code that makes it in production and commits as it would
(`django_capture_on_commit_callbacks(execute=True)`: the relay, the rival alerts and the
new stamps all run), then the kept answer is compared with the statement's.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from django.core.cache import cache
from django.test import override_settings
from django_redis.exceptions import ConnectionInterrupted

from achievements.models import Unlock
from achievements.services import import_manifest, revoke_unlock, save_season
from leaderboards.services import close_season, hide_player, restore_player
from players import feed
from players.services import friend_accept, friend_remove, friend_request, player_update_settings
from tests.conftest import Api, make_player
from tests.helpers import give
from tests.test_feed_api import FEED_QUEST, ago, feed_of, step
from tracker.models import Friendship, Game, Player, Privacy
from tracker.services import player_deactivate

pytestmark = pytest.mark.django_db

# What a kept page may show out of date, by FEED_HEAD_SECONDS at most (tracker/feedhead.py).
RARITY = ("unlock_percentage", "rarity")


def statement_reads() -> Any:
    """Counts the feed statement's runs."""
    return mock.patch.object(feed, "_entries", wraps=feed._entries)


def fresh(api: Api, player: Player) -> dict[str, Any]:
    """The page as the statement reads it, nothing kept."""
    with override_settings(FEED_HEAD_SECONDS=0):
        return feed_of(api, player)


def same(page: dict[str, Any]) -> tuple[Any, ...]:
    """What a page says: its items, and where the next starts (a cursor's text is signed
    with the time it was handed out, so two texts of one cursor differ)."""
    return page["results"], page["next"] and feed.Cursor.decode(page["next"])


def without_rarity(page: dict[str, Any]) -> tuple[Any, ...]:
    page = copy.deepcopy(page)
    for item in page["results"]:
        for name in RARITY:
            item.get("achievement", {}).pop(name, None)
    return same(page)


@pytest.fixture
def quest(db: Any) -> Game:
    return import_manifest(manifest=FEED_QUEST).game


@pytest.fixture
def commit(django_capture_on_commit_callbacks: Any) -> Callable[[], Any]:
    """A block whose writes are committed as in production: after it, what runs on commit
    has run (relays, alerts, stamps)."""

    @contextmanager
    def committed() -> Iterator[None]:
        with django_capture_on_commit_callbacks(execute=True):
            yield

    return committed


def test_a_kept_first_page_is_answered_without_the_statement_until_a_friend_acts(
    api: Api, alice: Player, bob: Player, quest: Game, commit: Callable[[], Any]
) -> None:
    with commit():
        friend_accept(player=bob, friendship=friend_request(sender=alice, receiver=bob))
        for i in range(22):
            give(bob, step(quest, i), at=ago(30 - i))
    first = feed_of(api, alice)

    with statement_reads() as statement:
        assert same(feed_of(api, alice)) == same(first)
        assert feed_of(api, alice, limit=5)["results"] == first["results"][:5]
        assert statement.call_count == 0
        longer = feed_of(api, alice, limit=50)  # more than was kept (21 of 22): read
        assert statement.call_count == 1 and len(longer["results"]) == 22

        with commit():
            give(bob, step(quest, 25))
        after = feed_of(api, alice)
    assert statement.call_count == 2
    assert after["results"][0]["achievement"]["name"] == "Step 25"
    assert after["results"][1:] == first["results"][:19]


def test_a_kept_page_holding_the_whole_feed_answers_any_limit(
    api: Api, alice: Player, bob: Player, quest: Game
) -> None:
    Friendship.objects.create(requester=alice, addressee=bob, status=Friendship.Status.ACCEPTED)
    give(bob, step(quest, 1), at=ago(1))
    first = feed_of(api, alice)

    with statement_reads() as statement:
        assert same(feed_of(api, alice, limit=100)) == same(first)
    assert statement.call_count == 0


def test_a_page_after_the_first_is_always_read(api: Api, alice: Player, bob: Player, quest: Game) -> None:
    Friendship.objects.create(requester=alice, addressee=bob, status=Friendship.Status.ACCEPTED)
    for i in range(3):
        give(bob, step(quest, i), at=ago(3 - i))
    cursor = feed_of(api, alice, limit=1)["next"]

    with statement_reads() as statement:
        assert len(feed_of(api, alice, limit=1, cursor=cursor)["results"]) == 1
        assert len(feed_of(api, alice, limit=1, cursor=cursor)["results"]) == 1
    assert statement.call_count == 2


def test_without_the_cache_the_statement_answers(api: Api, alice: Player, bob: Player, quest: Game) -> None:
    Friendship.objects.create(requester=alice, addressee=bob, status=Friendship.Status.ACCEPTED)
    give(bob, step(quest, 1), at=ago(1))
    expected = fresh(api, alice)

    with mock.patch.object(cache, "get_many", side_effect=ConnectionInterrupted(connection=None)):
        assert same(feed_of(api, alice)) == same(expected)


def test_a_season_closing_puts_a_friends_finish_on_a_kept_page(
    api: Api, alice: Player, bob: Player, quest: Game, commit: Callable[[], Any]
) -> None:
    Friendship.objects.create(requester=alice, addressee=bob, status=Friendship.Status.ACCEPTED)
    season = save_season(game=quest, name="Autumn Cup", starts_at=ago(10), ends_at=ago(5))
    give(bob, step(quest, 3), at=ago(6))
    assert [item["kind"] for item in feed_of(api, alice)["results"]] == ["unlock"]

    with commit():
        close_season(season=season, now=ago(1))

    assert [item["kind"] for item in feed_of(api, alice)["results"]] == ["season_finish", "unlock"]


# --- Whatever changes, the kept page is the statement's -----------------------------------


class World:
    """alice reads her feed; bob, carol and dave may be her friends, eve is a stranger.
    Each `step` makes one change a player, a moderator or an admin could make."""

    def __init__(self, api: Api, alice: Player, game: Game, rng: random.Random) -> None:
        self.api, self.alice, self.game, self.rng = api, alice, game, rng
        self.others = [make_player(name) for name in ("bob", "carol", "dave", "eve")]
        self.friends = set(self.others[:3])
        for friend in self.friends:
            friend_accept(player=self.alice, friendship=friend_request(sender=friend, receiver=self.alice))
        self.achievements = list(game.achievements.order_by("position"))
        self.done: list[str] = []

    def step(self) -> None:
        name, change = self.rng.choice(list(self.changes().items()))
        change()
        self.done.append(name)

    def changes(self) -> dict[str, Callable[[], None]]:
        player = self.rng.choice(self.others)
        achievement = self.rng.choice(self.achievements)
        unlocks = list(Unlock.objects.filter(player=player))
        changes = {
            "unlock": lambda: self.unlock(player, achievement),
            "unlock x3": lambda: [self.unlock(player, a) for a in self.rng.sample(self.achievements, 3)],
            "alice unlocks": lambda: self.unlock(self.alice, achievement),
            "privacy": lambda: player_update_settings(
                player=player, region=player.region, privacy=self.rng.choice(Privacy.values), email=player.email
            ),
            "hide": lambda: hide_player(player=player, actor=None, reason="test"),
            "restore": lambda: restore_player(player=player, actor=None, reason="test"),
            "deactivate": lambda: player_deactivate(player=player),
            "reactivate": lambda: self.save(player, is_active=True),
            "rename player": lambda: self.save(player, username=f"{player.username[:3]}{len(self.done)}"),
            "rename achievement": lambda: self.save(achievement, name=f"Renamed {len(self.done)}"),
            "hide achievement": lambda: self.save(achievement, hidden=not achievement.hidden),
            "rename game": lambda: self.save(self.game, name=f"Quest {len(self.done)}"),
            "befriend": lambda: self.befriend(player),
            "unfriend": lambda: self.unfriend(player),
        }
        if unlocks:
            unlock = self.rng.choice(unlocks)
            changes["revoke"] = lambda: revoke_unlock(unlock=unlock, actor=None, reason="test")
        return changes

    def unlock(self, player: Player, achievement: Any) -> None:
        """A deactivated player's game server is refused (404): nothing to compare."""
        if player.is_active and not Unlock.objects.filter(player=player, achievement=achievement).exists():
            give(player, achievement)

    def save(self, instance: Any, **values: Any) -> None:
        for name, value in values.items():
            setattr(instance, name, value)
        instance.save()

    def befriend(self, player: Player) -> None:
        if player not in self.friends:
            friend_accept(player=self.alice, friendship=friend_request(sender=player, receiver=self.alice))
            self.friends.add(player)

    def unfriend(self, player: Player) -> None:
        if player in self.friends:
            friend_remove(player=self.alice, other=player)
            self.friends.discard(player)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_after_every_change_the_kept_page_is_what_the_statement_reads(
    api: Api, alice: Player, quest: Game, commit: Callable[[], Any], seed: int
) -> None:
    with commit():
        world = World(api, alice, quest, random.Random(seed))
        for _ in range(6):
            world.step()
    feed_of(api, alice)  # kept

    with statement_reads() as statement:
        for n in range(60):
            with commit():
                world.step()
            kept = feed_of(api, alice)
            assert without_rarity(kept) == without_rarity(fresh(api, alice)), world.done
            if n % 3 == 0:  # read again with nothing new: the kept page, as it stands
                assert same(feed_of(api, alice)) == same(kept)
    kept_reads = 60 + 20
    # Both roads were taken: some reads were kept pages, others read anew after a change.
    assert 0 < statement.call_count - 60 < kept_reads, statement.call_count


def test_a_manifest_import_renaming_an_achievement_shows_on_a_kept_page(
    api: Api, alice: Player, bob: Player, quest: Game, commit: Callable[[], Any]
) -> None:
    Friendship.objects.create(requester=alice, addressee=bob, status=Friendship.Status.ACCEPTED)
    give(bob, step(quest, 1), at=ago(1))
    assert feed_of(api, alice)["results"][0]["achievement"]["name"] == "Step 1"

    renamed = copy.deepcopy(FEED_QUEST)
    renamed["achievements"][2]["name"] = "First Steps"  # A01, by bulk update
    with commit():
        import_manifest(manifest=renamed)

    assert feed_of(api, alice)["results"][0]["achievement"]["name"] == "First Steps"
