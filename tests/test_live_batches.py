"""Board moves relayed in batches (leaderboards.live): a burst of one player's unlocks
announces one move per board with the newest standing, and every pass of a friend is
alerted once, as it was when it happened, in a fixed number of queries however large the
batch."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from infra import outbox, realtime
from leaderboards import live
from leaderboards.boards import Rise
from tests.conftest import achievement, make_player
from tests.helpers import give
from tracker.models import Friendship, Game, Notification, OutboxEvent, Player

pytestmark = pytest.mark.django_db(transaction=True)


class Layer:
    """A channel layer that records what was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        self.sent.append((group, message["event"], message["data"]))

    def events(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        return [(group, data) for group, event, data in self.sent if event == kind]


@pytest.fixture
def layer(monkeypatch: pytest.MonkeyPatch, settings: Any) -> Layer:
    settings.OUTBOX_RELAY = "process"  # the test relays when it says so, in one batch
    fake = Layer()
    monkeypatch.setattr(realtime, "get_channel_layer", lambda: fake)
    return fake


def befriend(a: Player, b: Player) -> None:
    Friendship.objects.create(requester=a, addressee=b, status=Friendship.Status.ACCEPTED)


def test_a_burst_of_one_players_unlocks_moves_each_board_once_with_the_newest_points(
    alice: Player, game: Game, layer: Layer
) -> None:
    for name in ("FIRST_FLIGHT", "ACE_PILOT", "SECRET_ENDING"):
        give(alice, achievement(game, name))
    assert OutboxEvent.objects.count() == 3

    outbox.relay_pending()

    assert len(layer.events("achievement.unlocked")) == 3  # every toast still goes out
    moves = layer.events("leaderboard.updated")
    game_board = [data for group, data in moves if group == realtime.board_group("game", game.pk)]
    assert [(d["points"], d["new_rank"], d["rank_change"]) for d in game_board] == [(85, 1, None)]
    own = [(d["board"], d["points"]) for group, d in moves if group == realtime.player_group(alice.pk)]
    assert sorted(own) == [("game", 85), ("global", 85)]
    # One event per board group: the game's and the global board, each also by region.
    boards = [group for group, _ in moves if group.startswith("board.")]
    assert len(boards) == len(set(boards)) == 4


def test_rises_coalesce_from_the_first_points_to_the_last() -> None:
    rises = [
        Rise("game", "g", "p", 0, 10),
        Rise("global", "", "p", 5, 15),
        Rise("game", "g", "p", 10, 35),
        Rise("game", "g", "q", 3, 4),
    ]
    assert live.coalesced(rises) == [
        Rise("game", "g", "p", 0, 35),
        Rise("global", "", "p", 5, 15),
        Rise("game", "g", "q", 3, 4),
    ]


def test_every_friend_passed_in_a_batch_is_alerted_once(
    alice: Player, bob: Player, charlie: Player, game: Game, layer: Layer
) -> None:
    """bob passes alice and dave; erin passes alice too; charlie (private) passes alice
    but may not be named to her, so she hears of bob and erin only."""
    dave, erin = make_player("dave"), make_player("erin")
    give(alice, achievement(game, "FIRST_FLIGHT"))  # 10
    give(dave, achievement(game, "ACE_PILOT"))  # 25
    for friend in (alice, dave):
        befriend(bob, friend)
    befriend(alice, erin)
    befriend(charlie, alice)
    outbox.relay_pending()
    layer.sent.clear()

    give(bob, achievement(game, "FIRST_FLIGHT"))  # 10: passes nobody yet (alice has 10)
    give(bob, achievement(game, "ACE_PILOT"))  # 35: past alice and dave
    give(erin, achievement(game, "ACE_PILOT"))  # 25: past alice
    give(charlie, achievement(game, "ACE_PILOT"))  # 25: past alice, but private
    outbox.relay_pending()

    alerts = sorted((group, data["rival_id"], data["your_points"]) for group, data in layer.events("rival.passed"))
    assert alerts == sorted(
        [
            (realtime.player_group(alice.pk), str(bob.pk), 10),
            (realtime.player_group(alice.pk), str(erin.pk), 10),
            (realtime.player_group(dave.pk), str(bob.pk), 25),
        ]
    )
    recorded = sorted((n.player_id, n.payload["rival_id"]) for n in Notification.objects.filter(kind="rival"))
    assert recorded == sorted([(alice.pk, str(bob.pk)), (alice.pk, str(erin.pk)), (dave.pk, str(bob.pk))])
    [bobs] = [data for group, data in layer.events("rival.passed") if group.endswith(str(dave.pk))]
    assert (bobs["rival_points"], bobs["game_slug"]) == (35, game.slug)


def test_passes_relayed_late_are_alerted_as_they_were_when_they_happened(
    alice: Player, bob: Player, game: Game, layer: Layer
) -> None:
    """The board moves wait (the broker is down, say) while bob and alice pass each other
    three times: when they go out, each pass is alerted once, with the points of its moment,
    though by then alice leads by far."""
    befriend(alice, bob)
    for player, name in ((bob, "FIRST_FLIGHT"), (alice, "KILL_100"), (bob, "ACE_PILOT"), (alice, "SECRET_ENDING")):
        give(player, achievement(game, name))  # bob 10, alice 15, bob 35, alice 65
        outbox.relay_kind("unlocks")  # toasts go out; board moves wait
    assert OutboxEvent.objects.filter(kind="board_moves").count() == 4

    outbox.relay_kind("board_moves")

    alerts = [
        (group, data["rival_username"], data["rival_points"], data["your_points"])
        for group, data in layer.events("rival.passed")
    ]
    assert sorted(alerts) == sorted(
        [
            (realtime.player_group(bob.pk), "alice", 15, 10),
            (realtime.player_group(alice.pk), "bob", 35, 15),
            (realtime.player_group(bob.pk), "alice", 65, 35),
        ]
    )
    assert Notification.objects.filter(kind="rival").count() == 3


def test_rival_alerts_of_a_batch_take_three_statements_however_many_risers(alice: Player, game: Game) -> None:
    risers = [make_player(f"riser{i}") for i in range(6)]
    give(alice, achievement(game, "FIRST_FLIGHT"))  # 10
    for riser in risers:
        befriend(riser, alice)
    passed = {"player_id": str(alice.pk), "points": 10, "rival_points": 25}
    rises = [Rise("game", str(game.pk), str(riser.pk), 0, 25, passed=(passed,)) for riser in risers]
    players = Player.objects.in_bulk([riser.pk for riser in risers])

    with CaptureQueriesContext(connection) as queries:
        alerts = live.notify_rivals(rises, players)

    assert len(alerts) == 6 and {alert.player_id for alert in alerts} == {alice.pk}
    statements = [q["sql"].split()[0] for q in queries.captured_queries]
    assert [s for s in statements if s in {"SELECT", "INSERT"}] == ["SELECT", "SELECT", "INSERT"], statements
