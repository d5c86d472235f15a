"""static/js/live.js under Node, with a stand-in WebSocket and timers: which closes it
retries (network drops, server errors) and which it takes as final (docs/live.md, "Close
codes"). The browser tests (tests/browser/) drive it for real where Chromium is installed."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

NODE = shutil.which("node")
LIVE_JS = Path(settings.BASE_DIR) / "static" / "js" / "live.js"

pytestmark = pytest.mark.skipif(NODE is None, reason="needs Node.js")

# Runs live.js on a signed-in player's page (it opens /ws/me/), opens the socket, closes it
# with the given code, then runs whatever timers live.js set: prints what happened.
HARNESS = """
const fs = require("fs"), vm = require("vm");
const [path, code] = [process.argv[1], Number(process.argv[2])];
const sockets = [], timers = [];
class FakeSocket {
  constructor(url) { this.url = url; this.listeners = {}; sockets.push(this); }
  addEventListener(type, listener) { (this.listeners[type] ||= []).push(listener); }
  fire(type, event) { (this.listeners[type] || []).forEach((listener) => listener(event)); }
}
const body = { dataset: { player: "alice" }, appendChild() {} };
const document = { body, querySelector: (selector) => (selector === ".toast-stack" ? {} : null) };
vm.runInNewContext(fs.readFileSync(path, "utf8"), {
  document, location: { protocol: "https:", host: "questboard.example" },
  WebSocket: FakeSocket, setTimeout: (callback) => timers.push(callback), Math, JSON, Number, Set,
});
sockets[0].fire("open", {});
const opened = body.dataset.live;
sockets[0].fire("close", { code });
const afterClose = body.dataset.live;
timers.splice(0).forEach((callback) => callback());
console.log(JSON.stringify({ first: sockets[0].url, opened, afterClose, sockets: sockets.length }));
"""


def close_with(code: int) -> dict[str, object]:
    done = subprocess.run(
        [NODE, "-e", HARNESS, str(LIVE_JS), str(code)], capture_output=True, text=True, timeout=30, check=True
    )
    return json.loads(done.stdout)


@pytest.mark.parametrize("code", [4401, 4403, 4404])
def test_a_refusal_is_final(code: int) -> None:
    seen = close_with(code)

    assert seen["first"] == "wss://questboard.example/ws/me/"
    assert (seen["opened"], seen["afterClose"]) == ("on", "refused")
    assert seen["sockets"] == 1  # no second attempt


@pytest.mark.parametrize("code", [1006, 1011, 1012])
def test_a_dropped_socket_reconnects(code: int) -> None:
    seen = close_with(code)

    assert seen["afterClose"] == "off"
    assert seen["sockets"] == 2
