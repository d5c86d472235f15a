"""Each periodic job once per period, however many `celery beat` schedulers run.

One beat is the rule (docs/processes.md); a second one started by mistake (a deploy that
overlaps the old release, a copy-pasted process line) must not close seasons, take
snapshots or repair the index twice per period. So the scheduler claims each send before it
makes it: a Redis key per schedule entry and *period slot*, set with `SET NX PX` through
the cache. The first scheduler to claim a slot sends the task; any other finds the key
taken and skips that slot. The claim is made where every periodic job enters the system
(the scheduler), not in each task: the domain tasks stay plain, and a task run by hand or
by `run_periodic` is never held back.

A slot is a period that is the same on every machine, so two schedulers started at
different times agree on it:

- an interval entry (every N seconds): the N-second window of the epoch the send falls in,
  `floor(now / N)`. One scheduler's sends are at least N seconds apart, so it never meets
  its own claim; with two, each window gets one send.
- a crontab entry: the latest matching minute at or before now, the time it is due for.

The clocks of the machines running beat must agree (NTP) to well under the shortest
interval (15 s).

When Redis cannot be reached the job is sent anyway: with one beat (the rule) that is
exactly right, and with two the jobs tolerate running twice (docs/processes.md,
"Beat runs once": each is idempotent or serialised by PostgreSQL locks), whereas skipping
would stop seasons closing during a Redis outage. Without REDIS_URL the cache is each
process's memory, so schedulers cannot see each other's claims; the embedded default has
no broker and so no beat.
"""

from __future__ import annotations

import logging
import math
import os
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

from celery.beat import PersistentScheduler, ScheduleEntry
from celery.schedules import crontab, schedule
from django.core.cache import cache

log = logging.getLogger("questboard.beat")

# How far back a crontab's latest matching minute is looked for: a due entry matched
# minutes ago at most, but a beat that was stopped sends a missed run when it starts.
CRONTAB_LOOKBACK = timedelta(days=7)
# A claim outlives its slot by this much, so a scheduler running late still finds it.
CLAIM_MARGIN_SECONDS = 60


def slot_of(every: Any, *, now: datetime) -> tuple[str, float] | None:
    """The period slot a send of a schedule entry at `now` belongs to, as (a name for it,
    seconds the claim must live); None for a kind of schedule that has no slots (sent
    unclaimed; the project uses only intervals and crontabs)."""
    if isinstance(every, crontab):
        due = latest_match(every, now=now)
        # The claim lasts until the next matching time after the one it is for.
        last, delta, _ = every.remaining_delta(due)
        lasts = max((last + delta - now).total_seconds(), 0.0)
        return due.strftime("%Y-%m-%dT%H:%M%z"), lasts + CLAIM_MARGIN_SECONDS
    if isinstance(every, schedule):
        seconds = every.run_every.total_seconds()
        if seconds <= 0:
            return None
        start = math.floor(now.timestamp() / seconds) * seconds
        return f"every-{seconds:g}s-from-{start:.0f}", 2 * seconds + CLAIM_MARGIN_SECONDS
    return None


def latest_match(every: crontab, *, now: datetime) -> datetime:
    """The latest minute at or before `now` that a crontab matches (in its own timezone),
    or `now`'s minute if none within CRONTAB_LOOKBACK."""
    minute = every.maybe_make_aware(now).astimezone(every.tz).replace(second=0, microsecond=0)
    earliest = minute - CRONTAB_LOOKBACK
    candidate = minute
    while candidate > earliest:
        if (
            candidate.minute in every.minute
            and candidate.hour in every.hour
            and candidate.isoweekday() % 7 in every.day_of_week  # Sunday is 0 for crontab
            and candidate.day in every.day_of_month
            and candidate.month in every.month_of_year
        ):
            return candidate
        candidate -= timedelta(minutes=1)
    return minute


def claim(key: str, *, lasts: float, owner: str) -> bool:
    """Claim a slot (its key) for `lasts` seconds; False if another scheduler claimed it
    first. True when Redis cannot be reached: sent anyway (see the module)."""
    try:
        return bool(cache.add(key, owner, timeout=lasts))
    except Exception:
        log.warning("could not claim %s (Redis unreachable): sending anyway", key)
        return True


def release(key: str) -> None:
    """Give a claimed slot back after a failed send, so another scheduler may send it."""
    try:
        cache.delete(key)
    except Exception:
        log.warning("could not release %s (Redis unreachable)", key)


class OncePerPeriodScheduler(PersistentScheduler):
    """Celery beat's own scheduler (the schedule file, CELERY_BEAT_SCHEDULE) that sends an
    entry only when it claimed the entry's slot (settings.CELERY_BEAT_SCHEDULER)."""

    @property
    def owner(self) -> str:
        """Who claimed a slot, in the claim's value: this machine and process."""
        return f"{socket.gethostname()}:{os.getpid()}"

    def apply_entry(self, entry: ScheduleEntry, producer: Any = None) -> None:
        slot = slot_of(entry.schedule, now=datetime.now(tz=UTC))
        if slot is None:
            super().apply_entry(entry, producer=producer)
            return
        label, lasts = slot
        key = f"beat:{entry.name}:{label}"
        if not claim(key, lasts=lasts, owner=self.owner):
            log.info("periodic job %s: slot %s skipped, another scheduler claimed it", entry.name, label)
            return
        try:
            self.apply_async(entry, producer=producer, advance=False)
        except Exception:
            # Broker away: given back, so another scheduler due later in the slot may send
            # it; this one sends the next slot as usual.
            release(key)
            log.exception("periodic job %s: sending slot %s failed", entry.name, label)
        else:
            log.info("periodic job %s: slot %s sent by %s", entry.name, label, self.owner)
