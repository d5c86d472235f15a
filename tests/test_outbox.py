"""The outbox: what follows a committed unlock (live events, rival alerts, the rank index)
is recorded with it and relayed after commit, at least once, in order; an outage of the
channel layer, the broker or Redis delays it and loses none (infra/outbox.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerDown
from redis.exceptions import ConnectionError as RedisDown

from achievements.models import Source
from achievements.services import UnlockRequest, unlock_achievements
from infra import outbox, realtime
from leaderboards import index
from leaderboards import tasks as board_tasks
from leaderboards.boards import Board
from tests.conftest import achievement, make_player
from tests.helpers import give, unlock
from tracker.models import Friendship, Game, Notification, OutboxEvent, Player

pytestmark = pytest.mark.django_db(transaction=True)


class Layer:
    """A channel layer that can be taken down: while down every send fails, as Redis
    pub/sub does when Redis is unreachable; while up it records what was sent."""

    def __init__(self) -> None:
        self.up = True
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        if not self.up:
            raise RedisDown("channel layer unreachable")
        self.sent.append((group, message["event"], message["data"]))

    def events(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        return [(group, data) for group, event, data in self.sent if event == kind]


class Broker:
    """Publishing Celery tasks fails while the broker is down (the tests run tasks inline)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.up = True
        apply_async = board_tasks.announce_board_moves.apply_async

        def publish(*args: Any, **kwargs: Any) -> Any:
            if not self.up:
                raise BrokerDown("broker unreachable")
            return apply_async(*args, **kwargs)

        monkeypatch.setattr(board_tasks.announce_board_moves, "apply_async", publish)


@pytest.fixture
def relayed_by_hand(settings: Any) -> None:
    """As in production: nothing is relayed by the writing process; the relay runs when
    the test says so."""
    settings.OUTBOX_RELAY = "process"


@pytest.fixture
def layer(monkeypatch: pytest.MonkeyPatch) -> Layer:
    fake = Layer()
    monkeypatch.setattr(realtime, "get_channel_layer", lambda: fake)
    return fake


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> Broker:
    return Broker(monkeypatch)


@pytest.fixture
def friends(alice: Player, bob: Player, game: Game) -> None:
    """alice and bob are friends; alice has 10 points in Star Raiders, bob none. Nothing
    is left pending."""
    Friendship.objects.create(requester=bob, addressee=alice, status=Friendship.Status.ACCEPTED)
    give(alice, achievement(game, "FIRST_FLIGHT"))
    outbox.relay_pending()


def pending() -> list[str]:
    return list(OutboxEvent.objects.order_by("id").values_list("kind", flat=True))


@pytest.mark.usefixtures("relayed_by_hand")
def test_an_outage_of_the_channel_layer_and_the_broker_delays_live_events_and_loses_none(
    api: Any, friends: None, alice: Player, bob: Player, game: Game, game_key: str, layer: Layer, broker: Broker
) -> None:
    layer.up = broker.up = False
    response = unlock(api.as_key(game_key), bob, achievement(game, "ACE_PILOT"))
    assert response.status_code == 201  # the unlock itself never waits for either
    assert pending() == ["unlocks"]

    outbox.relay_pending()
    assert layer.sent == [] and pending() == ["unlocks"]  # still there, nothing half-sent

    layer.up = True  # the channel layer is back, the broker is not
    outbox.relay_pending()
    assert [group for group, _ in layer.events("achievement.unlocked")] == [realtime.player_group(bob.pk)]
    assert pending() == ["board_moves"]  # only the work that needs the broker waits
    assert layer.events("rival.passed") == [] and not Notification.objects.exists()

    broker.up = True
    outbox.relay_pending()
    assert pending() == []
    [(group, alert)] = layer.events("rival.passed")
    assert (group, alert["rival_id"], alert["your_points"]) == (realtime.player_group(alice.pk), str(bob.pk), 10)
    assert Notification.objects.filter(player=alice, kind="rival").count() == 1
    moved = [data for _, data in layer.events("leaderboard.updated") if data["board"] == "game"]
    assert {(data["player_id"], data["new_rank"]) for data in moved} == {(str(bob.pk), 1)}

    sent = len(layer.sent)
    outbox.relay_pending()  # nothing is pending: nothing is sent twice
    assert len(layer.sent) == sent and Notification.objects.count() == 1


@pytest.mark.usefixtures("relayed_by_hand")
def test_a_failed_live_send_leaves_no_rival_alert_behind(
    friends: None, alice: Player, bob: Player, game: Game, layer: Layer
) -> None:
    """Alerts are recorded in the same transaction as their send: a send that fails
    records nothing, so the retry cannot leave a player two alerts for one pass."""
    give(bob, achievement(game, "ACE_PILOT"))
    outbox.relay_pending()
    layer.sent.clear()
    Notification.objects.all().delete()
    passed = {"player_id": str(alice.pk), "points": 10, "rival_points": 25}
    rises = [
        {"kind": "game", "scope": str(game.pk), "player_id": str(bob.pk), "before": 0, "after": 25, "passed": [passed]}
    ]
    layer.up = False
    with pytest.raises(RedisDown):
        board_tasks.announce_board_moves(rises)
    assert not Notification.objects.exists()
    layer.up = True
    board_tasks.announce_board_moves(rises)
    assert Notification.objects.filter(player=alice).count() == 1


@pytest.mark.usefixtures("relayed_by_hand")
def test_events_are_relayed_oldest_first(alice: Player, game: Game, layer: Layer) -> None:
    names = ["FIRST_FLIGHT", "ACE_PILOT", "SECRET_ENDING"]
    for name in names:
        give(alice, achievement(game, name))
    assert pending() == ["unlocks"] * 3
    outbox.relay_pending()
    assert [data["achievement"]["api_name"] for _, data in layer.events("achievement.unlocked")] == names


@pytest.mark.usefixtures("relayed_by_hand")
def test_the_relay_command_relays_what_is_pending(alice: Player, game: Game, layer: Layer) -> None:
    from django.core.management import call_command

    give(alice, achievement(game, "FIRST_FLIGHT"))
    call_command("relay_outbox", "--once")
    assert len(layer.events("achievement.unlocked")) == 1 and pending() == []


@pytest.mark.usefixtures("relayed_by_hand")
def test_the_relay_looks_only_at_the_kinds_with_an_event_pending(alice: Player, game: Game, layer: Layer) -> None:
    assert outbox.pending_kinds() == set()
    give(alice, achievement(game, "FIRST_FLIGHT"))
    outbox.record("reindex", {"players": [str(alice.pk)]})
    assert outbox.pending_kinds() == {"unlocks", "reindex"}

    outbox.relay_kind("unlocks")
    assert outbox.pending_kinds() == {"reindex", "board_moves"}  # the unlock's board moves follow it
    outbox.relay_pending()
    assert outbox.pending_kinds() == set()


@pytest.mark.usefixtures("relayed_by_hand")
def test_the_unlock_statement_records_named_fields(alice: Player, game: Game, layer: Layer) -> None:
    first_flight = achievement(game, "FIRST_FLIGHT")
    give(alice, first_flight)

    [payload] = OutboxEvent.objects.filter(kind="unlocks").values_list("payload", flat=True)
    assert set(payload) == set(outbox.UnlocksPayload.__annotations__)
    assert payload["unlocks"] == [
        {"player_id": str(alice.pk), "achievement_id": str(first_flight.pk), "game_id": str(game.pk), "points": 10}
    ]
    assert {(r["kind"], r["player_id"], r["before"], r["after"]) for r in payload["rises"]} == {
        ("game", str(alice.pk), 0, 10),
        ("global", str(alice.pk), 0, 10),
    }
    outbox.relay_pending()
    [moves] = layer.events("leaderboard.updated")[:1]
    assert moves[1]["points"] == 10


@pytest.mark.usefixtures("relayed_by_hand")
def test_events_the_previous_release_left_pending_as_lists_are_still_relayed(
    friends: None, alice: Player, bob: Player, game: Game, layer: Layer
) -> None:
    """Rows written before the upgrade, in the old positional shape, are read for one
    release (docs/outbox.md, "Upgrading"): the toast, the index and the rival alert follow."""
    ace = achievement(game, "ACE_PILOT")
    give(bob, ace)
    OutboxEvent.objects.all().delete()  # as if the statement had written the old shape instead
    layer.sent.clear()
    Notification.objects.all().delete()
    OutboxEvent.objects.create(
        kind="unlocks",
        payload={
            "at": "2026-01-01T00:00:00+00:00",
            "unlocks": [[str(bob.pk), str(ace.pk), str(game.pk), 25]],
            "rises": [["game", str(game.pk), str(bob.pk), 0, 25]],
        },
        created=timezone.now(),
    )

    outbox.relay_pending()

    assert pending() == []
    [(group, toast)] = layer.events("achievement.unlocked")
    assert (group, toast["achievement"]["api_name"]) == (realtime.player_group(bob.pk), "ACE_PILOT")
    [(group, alert)] = layer.events("rival.passed")
    assert (group, alert["rival_id"]) == (realtime.player_group(alice.pk), str(bob.pk))


def test_a_historical_import_records_no_live_event(alice: Player, game: Game, layer: Layer) -> None:
    unlock_achievements([UnlockRequest(alice.pk, achievement(game, "FIRST_FLIGHT"))], source=Source.DEMO, live=False)
    assert pending() == [] and layer.sent == []


@pytest.fixture
def redis_down_for_writes(rank_index: index.RedisStore, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Index writes fail (Redis unreachable) until the test lets them through."""
    state = {"up": False}
    apply, apply_and_rank = index.RedisStore.apply, index.RedisStore.apply_and_rank

    def guarded(method: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            if not state["up"]:
                raise RedisDown("Redis unreachable")
            return method(*args, **kwargs)

        return call

    monkeypatch.setattr(index.RedisStore, "apply", guarded(apply))
    monkeypatch.setattr(index.RedisStore, "apply_and_rank", guarded(apply_and_rank))
    yield state


@pytest.mark.usefixtures("relayed_by_hand")
def test_an_unlock_made_while_redis_was_down_is_ranked_by_the_relay_when_it_returns(
    api: Any, game: Game, game_key: str, layer: Layer, redis_down_for_writes: dict[str, bool]
) -> None:
    dave = make_player("dave", region="na")
    response = unlock(api.as_key(game_key), dave, achievement(game, "ACE_PILOT"))
    assert response.status_code == 201
    store = index.redis_store()
    assert store.standing(Board.game(game.pk), str(dave.pk)) is None  # the index missed it

    outbox.relay_pending()  # Redis still down: the event stays
    assert pending() == ["unlocks"]
    redis_down_for_writes["up"] = True
    outbox.relay_pending()
    for board in (Board.game(game.pk), Board.game(game.pk, "na"), Board.everywhere(), Board.everywhere("na")):
        assert store.standing(board, str(dave.pk)).points == 25, board
