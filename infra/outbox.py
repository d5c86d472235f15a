"""The transactional outbox: effects of a write that must not be lost, relayed after commit.

A write records an `OutboxEvent` in its own transaction (the unlock statement inserts it
directly; other writers call `record`). The relay takes pending events oldest first, hands
each run of one kind to its handler (settings.OUTBOX_HANDLERS), and deletes them in the
same transaction as the handler ran in. Guarantees:

- nothing is lost: an event leaves the table only when its handler returned; a handler
  that raises (Redis, the channel layer or the broker unreachable) rolls the batch back
  and the relay tries again later;
- in order within a kind: one relay works on a kind at a time (a PostgreSQL advisory
  lock), oldest event first; kinds are independent, so a handler whose service is down
  (the broker, say) holds up only its own kind;
- at least once: an effect may repeat if the relay dies between a handler's side effect
  and the commit, so handlers are written so a repeat is harmless.

Two ways to run it (settings.OUTBOX_RELAY): "process" — `manage.py relay_outbox`, which
polls every few milliseconds (production; LISTEN/NOTIFY was measured and dropped: PostgreSQL
serialises the commits of notifying transactions); "inline" — the writing process relays
right after its own commit (the laptop default with no broker, and the tests).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from infra.locks import lock_until_commit
from tracker.models import OutboxEvent

log = logging.getLogger("questboard.outbox")

BATCH = 500

Handler = Callable[[list[dict[str, Any]]], None]


@cache
def handler_for(kind: str) -> Handler:
    return import_string(settings.OUTBOX_HANDLERS[kind])


def record(kind: str, payload: dict[str, Any]) -> None:
    """Record an event in the current transaction; it is relayed after commit."""
    OutboxEvent.objects.create(kind=kind, payload=payload, created=timezone.now())
    wake()


def wake() -> None:
    """After an event was recorded in this transaction: relay it at commit when relaying
    inline (the relay process finds it by polling)."""
    if settings.OUTBOX_RELAY == "inline":
        transaction.on_commit(relay_pending, robust=True)


def relay_batch(kind: str, limit: int = BATCH) -> int:
    """Relay up to `limit` of the oldest pending events of one kind in one transaction.
    Returns how many were relayed (0 when none are pending or another relay is at work on
    this kind). Raises what the handler raised, leaving every event of the batch pending."""
    with transaction.atomic():
        if not lock_until_commit(f"outbox-relay:{kind}", wait=False):
            return 0
        events = list(OutboxEvent.objects.filter(kind=kind).order_by("id")[:limit])
        if events:
            handler_for(kind)([event.payload for event in events])
            OutboxEvent.objects.filter(pk__in=[event.pk for event in events]).delete()
    return len(events)


def relay_kind(kind: str) -> int:
    """Relay every pending event of one kind, batch by batch. Raises what a handler
    raised; the batches before it stay relayed."""
    relayed = 0
    while True:
        done = relay_batch(kind)
        relayed += done
        if done < BATCH:
            return relayed


def relay_pending() -> int:
    """Relay until nothing is pending. Kinds are relayed independently, each in order, so
    one whose handler fails (its service is down) holds up only itself; its events stay
    for the next attempt (the relay process, or the next write's inline relay)."""
    relayed = 0
    for kind in settings.OUTBOX_HANDLERS:
        try:
            relayed += relay_kind(kind)
        except Exception:
            log.warning("outbox relay of %s failed; it stays pending", kind, exc_info=True)
    return relayed


def latest_id() -> int | None:
    """The last event id handed out (PostgreSQL: the id sequence, O(1) however many dead
    rows the table holds); None where there is no such shortcut."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT last_value FROM {_sequence()}")
        return cursor.fetchone()[0]


@cache
def _sequence() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [OutboxEvent._meta.db_table])
        return cursor.fetchone()[0]


def vacuum() -> None:
    """Reclaim relayed events. A queue table's deleted rows are skipped by every read
    until vacuumed, and autovacuum visits a table at most once a minute: at hundreds of
    events a second that made each look for pending events cost milliseconds."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM {OutboxEvent._meta.db_table}")
