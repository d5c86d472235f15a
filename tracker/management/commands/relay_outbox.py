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
FULL_CHECK = 1.0  # seconds between looks at the table itself
VACUUM_AFTER = 5_000  # events relayed between vacuums of the table (see outbox.vacuum)


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

    def handle(self, *args: Any, poll: float, once: bool, **options: Any) -> None:
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
        seen: int | None = None  # the last event id the relay looked past
        full_check = 0.0
        since_vacuum = 0
        while not stopping:
            relayed = 0
            try:
                # While idle, only the id sequence is read: nothing new was written if it
                # did not move. Once a second the table itself is looked at, for events of
                # transactions that took their id before the last look and committed after.
                latest = outbox.latest_id()
                now = time.monotonic()
                if latest is not None and latest == seen and now - full_check < FULL_CHECK:
                    time.sleep(poll)
                    continue
                if now - full_check >= FULL_CHECK:
                    full_check = now
                seen = latest
                for kind in settings.OUTBOX_HANDLERS:
                    if retry_at.get(kind, 0.0) > time.monotonic():
                        continue
                    try:
                        relayed += outbox.relay_kind(kind)
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
            if not relayed:
                time.sleep(poll)
