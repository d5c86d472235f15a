from __future__ import annotations

import logging
import signal
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import OperationalError, connection

from infra import outbox, realtime

log = logging.getLogger("questboard.outbox")

MAX_PAUSE = 30.0
FULL_CHECK = 1.0  # seconds between looks at the table itself while the sequence is still
# An event takes its id when inserted and becomes visible at commit, moments later. After
# the sequence moved the relay keeps looking at the table this long, so an event whose
# commit lagged its id is relayed at the next poll, not at the next FULL_CHECK.
COMMIT_GRACE = 0.25
VACUUM_AFTER = 5_000  # events relayed between vacuums of the table (see outbox.vacuum)
# Kinds relayed at most once a tick while busy, seconds: their events pile up meanwhile
# and go out together, one batch's fixed cost shared by all (a tick's toasts in one
# pipelined send; board moves coalesced, leaderboards.live.coalesced). A lone event, one
# that arrives after a quiet tick, goes out at once.
TICKS = {"unlocks": 0.05, "board_moves": 0.1}


class Command(BaseCommand):
    help = (
        "Relay the outbox (live events, rank index upkeep) after commit, in order per kind. "
        "Runs until stopped, polling every --poll seconds while nothing is pending."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        # Polling, not LISTEN/NOTIFY: PostgreSQL serialises the commits of notifying
        # transactions. An idle poll reads one sequence, so 50 a second cost nothing.
        parser.add_argument("--poll", type=float, default=0.02, help="Seconds between polls when idle.")
        parser.add_argument("--once", action="store_true", help="Relay what is pending, then exit.")
        parser.add_argument(
            "--tick-scale",
            type=float,
            default=1.0,
            help="Multiplies the busy ticks of "
            + ", ".join(f"{kind} ({tick * 1000:.0f} ms)" for kind, tick in TICKS.items())
            + "; 0 relays every event at once.",
        )

    def handle(self, *args: Any, poll: float, once: bool, tick_scale: float, **options: Any) -> None:
        if once:
            self.stdout.write(f"relayed {outbox.relay_pending()}")
            return
        realtime.use_own_loop()
        stopping: list[bool] = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
        # A kind whose handler failed (its service is down) is retried after a pause that
        # doubles up to MAX_PAUSE; the other kinds go on meanwhile.
        retry_at: dict[str, float] = {}
        pause: dict[str, float] = {}
        ticks = {kind: tick * tick_scale for kind, tick in TICKS.items() if tick * tick_scale > 0}
        seen: int | None = None  # the last event id the relay looked past
        look_until = 0.0  # keep looking at the table until then (COMMIT_GRACE)
        full_check = 0.0
        since_vacuum = 0
        last_run: dict[str, float] = {}  # when each ticked kind last relayed something
        held_until: float | None = None  # a ticked kind waits for its tick: look again then
        while not stopping:
            relayed = 0
            if held_until is not None and (wait := held_until - time.monotonic()) > 0:
                # Busy: what came meanwhile waits for the tick, so no look before it.
                time.sleep(min(wait, poll * 5))
                continue
            try:
                # While idle, only the id sequence is read: nothing new was written if it
                # did not move for COMMIT_GRACE. Once a second the table itself is looked
                # at, for events of transactions that took their id long before commit.
                latest = outbox.latest_id()
                now = time.monotonic()
                if latest != seen:
                    seen, look_until = latest, now + COMMIT_GRACE
                if now >= look_until and now - full_check < FULL_CHECK and held_until is None:
                    time.sleep(poll)
                    continue
                if now - full_check >= FULL_CHECK:
                    full_check = now
                held_until = None
                pending = outbox.pending_kinds()
                for kind in settings.OUTBOX_HANDLERS:
                    if kind not in pending or retry_at.get(kind, 0.0) > time.monotonic():
                        continue
                    tick = ticks.get(kind)
                    if tick and now - last_run.get(kind, -tick) < tick:
                        due = last_run[kind] + tick
                        held_until = due if held_until is None else min(held_until, due)
                        continue
                    try:
                        done = outbox.relay_kind(kind)
                        relayed += done
                        if done and tick:
                            last_run[kind] = now
                        pause.pop(kind, None)
                        retry_at.pop(kind, None)
                    except OperationalError:
                        raise
                    except Exception:
                        pause[kind] = min(pause.get(kind, 0.5) * 2, MAX_PAUSE)
                        retry_at[kind] = time.monotonic() + pause[kind]
                        log.warning("outbox relay of %s failed; retrying in %.0f s", kind, pause[kind], exc_info=True)
                since_vacuum += relayed
                if since_vacuum >= VACUUM_AFTER:
                    outbox.vacuum()
                    since_vacuum = 0
            except OperationalError:
                log.warning("database unavailable; retrying", exc_info=True)
                connection.close()
                time.sleep(1.0)
            if not relayed and held_until is None:
                time.sleep(poll)
