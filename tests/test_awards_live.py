"""award.earned on the player's own stream (docs/live.md): sent through the outbox after the
unlock that earned it commits, shown as a toast by the pages' live script, and relayed
without a hitch for events recorded before awards existed (docs/outbox.md, "Upgrading")."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from achievements.models import Award
from achievements.services import import_manifest
from infra import outbox, realtime
from tests.helpers import give
from tests.sockets import WAIT, run
from tests.test_live_consumers import QUIET, access, server_unlocks, silence, stream
from tests.test_outbox import Layer
from tracker.models import Game, OutboxEvent, Player
from tracker.services import game_key_create

FINALE = {
    "slug": "finale",
    "name": "The Finale",
    "achievements": [
        {"api_name": "OPENING", "name": "Opening", "points": 5, "type": "progression"},
        {"api_name": "ENDING", "name": "Ending", "points": 20, "type": "win_condition"},
    ],
}


@pytest.mark.django_db(transaction=True)
def test_the_unlock_that_beats_and_masters_a_game_tells_the_player_of_both(alice: Player, bob: Player) -> None:
    game = import_manifest(manifest=FINALE).game
    key = game_key_create(game=game)
    give(alice, game.achievements.get(api_name="OPENING"))

    received: list[dict[str, Any]] = []
    token = access(alice)

    async def scenario() -> None:
        async with stream(f"/ws/me/?token={token}") as me:
            await server_unlocks(key, bob, game, "OPENING")  # someone else's unlock: nothing for alice
            await silence(me)
            await server_unlocks(key, alice, game, "ENDING")
            while not any(f["type"] == "award.earned" and f["data"]["kind"] == "mastered" for f in received):
                received.append(await me.receive_json_from(timeout=WAIT))
            while not await me.receive_nothing(timeout=QUIET):  # the board moves that follow
                received.append(await me.receive_json_from())

    run(scenario)

    awarded = {award.kind: award.awarded_at.isoformat() for award in Award.objects.filter(player=alice)}
    earned = [frame["data"] for frame in received if frame["type"] == "award.earned"]
    game_data = {"id": str(game.pk), "slug": "finale", "name": "The Finale"}
    assert sorted(earned, key=lambda data: data["kind"]) == [
        {"kind": "beaten", "game": game_data, "awarded_at": awarded["beaten"]},
        {"kind": "mastered", "game": game_data, "awarded_at": awarded["mastered"]},
    ]
    # After the toast of the unlock that earned them.
    types = [frame["type"] for frame in received]
    assert types.index("achievement.unlocked") < types.index("award.earned")


@pytest.mark.django_db(transaction=True)
def test_an_unlocks_event_recorded_before_awards_existed_is_relayed_as_before(
    alice: Player, game: Game, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.OUTBOX_RELAY = "process"  # relayed below, by hand
    layer = Layer()
    monkeypatch.setattr(realtime, "get_channel_layer", lambda: layer)
    first_flight = game.achievements.get(api_name="FIRST_FLIGHT")
    give(alice, first_flight)
    OutboxEvent.objects.all().delete()  # as if the previous release had written the row below
    OutboxEvent.objects.create(
        kind="unlocks",
        payload={
            "at": timezone.now().isoformat(),
            "unlocks": [
                {
                    "player_id": str(alice.pk),
                    "achievement_id": str(first_flight.pk),
                    "game_id": str(game.pk),
                    "points": 10,
                }
            ],
            "rises": [],
        },
        created=timezone.now(),
    )

    outbox.relay_pending()

    assert not OutboxEvent.objects.filter(kind="unlocks").exists()
    [(group, toast)] = layer.events("achievement.unlocked")
    assert (group, toast["achievement"]["api_name"]) == (realtime.player_group(alice.pk), "FIRST_FLIGHT")
    assert layer.events("award.earned") == []


# --- The toast ---------------------------------------------------------------------------------

NODE = shutil.which("node")
LIVE_JS = Path(settings.BASE_DIR) / "static" / "js" / "live.js"

# Runs live.js on a signed-in player's page, opens its /ws/me/ socket, delivers one frame,
# and prints the toasts it showed.
HARNESS = """
const fs = require("fs"), vm = require("vm");
const [path, frame] = [process.argv[1], process.argv[2]];
const sockets = [], toasts = [];
class FakeSocket {
  constructor(url) { this.url = url; this.listeners = {}; sockets.push(this); }
  addEventListener(type, listener) { (this.listeners[type] ||= []).push(listener); }
  fire(type, event) { (this.listeners[type] || []).forEach((listener) => listener(event)); }
}
function element() {
  return { dataset: {}, children: [], className: "", textContent: "", setAttribute() {}, remove() {},
    append(...items) { this.children.push(...items); }, appendChild(item) { this.children.push(item); } };
}
const stack = element();
stack.appendChild = (item) => toasts.push({ kind: item.className, title: item.children[0].textContent,
  text: item.children[1].textContent });
const body = { dataset: { player: "alice" }, appendChild() {} };
const document = { body, createElement: element,
  querySelector: (selector) => (selector === ".toast-stack" ? stack : null) };
vm.runInNewContext(fs.readFileSync(path, "utf8"), {
  document, location: { protocol: "https:", host: "questboard.example" },
  WebSocket: FakeSocket, setTimeout: () => 0, Math, JSON, Number, Set,
});
sockets[0].fire("open", {});
sockets[0].fire("message", { data: frame });
console.log(JSON.stringify(toasts));
"""


@pytest.mark.skipif(NODE is None, reason="needs Node.js")
@pytest.mark.parametrize("kind, title", [("mastered", "Game mastered!"), ("beaten", "Game beaten!")])
def test_the_live_script_toasts_an_earned_award(kind: str, title: str) -> None:
    frame = {
        "type": "award.earned",
        "data": {"kind": kind, "game": {"id": "g", "slug": "finale", "name": "The Finale"}, "awarded_at": "x"},
    }

    done = subprocess.run(
        [NODE, "-e", HARNESS, str(LIVE_JS), json.dumps(frame)], capture_output=True, text=True, timeout=30, check=True
    )

    assert json.loads(done.stdout) == [{"kind": "toast award", "title": title, "text": "The Finale"}]
