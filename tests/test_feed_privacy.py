"""The privacy matrix, extended to the friends' feed (docs/feed.md, "Privacy"): dana is
public, friends-only, private, or public but blocked by moderation (hidden from the
boards); alice is her friend, bob a stranger (he once was her friend: he still holds a
rival alert she sent him), and there is an anonymous visitor. Each of dana's four kinds of
item shows to alice exactly when her activity is shown to friends
(`tracker.auth.ACTIVITY_SHOWN`), to bob never, and anonymous callers get 401.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from achievements.models import Award
from achievements.services import import_manifest, save_season
from leaderboards.services import close_season, hide_player
from tests.conftest import Api, make_player
from tests.helpers import assert_error, give
from tests.test_feed_api import FEED_QUEST, FEED_URL, award, feed_of, passed, step
from tests.test_friends import befriend
from tests.test_player_pages import logged_in
from tracker.auth import ACTIVITY_SHOWN, Caller, Visibility, visibility
from tracker.models import Game, Player, Privacy

pytestmark = pytest.mark.django_db

STATES = ["public", "friends", "private", "blocked"]
# Whether dana's activity reaches her friends' feeds, in each state.
SHOWN = {"public": True, "friends": True, "private": False, "blocked": False}
KINDS = {"unlock", "award", "season_finish", "passed"}


def ago(hours: float) -> datetime:
    return timezone.now() - timedelta(hours=hours)


@dataclass(frozen=True)
class Cast:
    state: str
    dana: Player
    alice: Player
    bob: Player
    game: Game


@pytest.fixture(params=STATES)
def cast(request: pytest.FixtureRequest, alice: Player, bob: Player) -> Cast:
    """dana's activity of every kind: a top-ten season finish, an unlock, an award, and
    passing alice (and, back when they were friends, bob)."""
    state = request.param
    game = import_manifest(manifest=FEED_QUEST).game
    dana = make_player("dana", privacy=Privacy.PUBLIC if state == "blocked" else state)
    befriend(alice, dana)
    season = save_season(game=game, name="Cup", starts_at=ago(10), ends_at=ago(5))
    give(dana, step(game, 3), at=ago(6))
    close_season(season=season, now=ago(4))
    award(dana, game, Award.Kind.BEATEN, ago(3))
    passed(alice, dana, game, ago(2))
    passed(bob, dana, game, ago(2))
    if state == "blocked":
        hide_player(player=dana, actor=None, reason="Cheating.")
    return Cast(state, dana, alice, bob, game)


def about_dana(items: list[dict[str, Any]]) -> set[str]:
    return {item["kind"] for item in items if item["player"]["username"] == "dana"}


def test_a_friend_sees_every_kind_of_her_activity_exactly_when_she_shares_it(api: Api, cast: Cast) -> None:
    items = feed_of(api, cast.alice)["results"]

    assert about_dana(items) == (KINDS if SHOWN[cast.state] else set())
    assert {item["player"]["username"] for item in items} <= {"dana"}


def test_a_stranger_never_sees_it(api: Api, cast: Cast) -> None:
    assert feed_of(api, cast.bob)["results"] == []


def test_anonymous_callers_get_401(api: Api, cast: Cast) -> None:
    assert_error(api.anonymous().get(FEED_URL), 401, "not_authenticated")


def test_the_dashboard_follows_the_same_rule(cast: Cast) -> None:
    link = 'href="/players/dana/"'

    friend_page = logged_in(cast.alice).get("/dashboard/").content.decode()
    stranger_page = logged_in(cast.bob).get("/dashboard/").content.decode()

    assert (link in friend_page) is SHOWN[cast.state]
    assert link not in stranger_page
    assert Client().get("/dashboard/").status_code == 302  # to the log-in page


def test_the_rule_is_what_visibility_grants_a_friend(alice: Player) -> None:
    """A friend sees a player's activity exactly when they may see the player's data
    (`visibility`), unless moderation hid them or they left."""

    def shown(player: Player) -> bool:
        return Player.objects.filter(ACTIVITY_SHOWN, pk=player.pk).exists()

    for privacy in (Privacy.PUBLIC, Privacy.FRIENDS, Privacy.PRIVATE):
        dana = make_player(f"dana-{privacy}", privacy=privacy)
        befriend(alice, dana)

        assert shown(dana) is (visibility(Caller(player=alice), dana) is Visibility.ALL), privacy
        Player.objects.filter(pk=dana.pk).update(boards_hidden=True)
        assert not shown(dana), privacy
        Player.objects.filter(pk=dana.pk).update(boards_hidden=False, is_active=False)
        assert not shown(dana), privacy


def test_a_private_reader_still_reads_her_friends_feed(api: Api, alice: Player, bob: Player) -> None:
    """The reader's own privacy hides what others see of her, not what she may see."""
    game = import_manifest(manifest=FEED_QUEST).game
    alice.privacy = Privacy.PRIVATE
    alice.save(update_fields=["privacy"])
    befriend(alice, bob)
    give(bob, step(game, 1))

    assert [item["player"]["username"] for item in feed_of(api, alice)["results"]] == ["bob"]
