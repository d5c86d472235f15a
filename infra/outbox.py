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

import json
import logging
from collections.abc import Callable
from functools import cache
from typing import Any, NotRequired, TypedDict

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from infra.locks import lock_until_commit
from tracker.models import OutboxEvent

log = logging.getLogger("questboard.outbox")

BATCH = 500


# --- The payload of each kind: named fields, never positions (docs/outbox.md) -------------


class Unlocked(TypedDict):
    """One new unlock (ids as strings)."""

    player_id: str
    achievement_id: str
    game_id: str
    points: int


class PassedItem(TypedDict):
    """A friend a rise passed on a game's board, decided by the unlock statement at the
    moment of the rise (the rival alert it sends)."""

    player_id: str  # the friend passed
    points: int  # the friend's points then
    rival_points: int  # the riser's points after the rise


class RiseItem(TypedDict):
    """Points of one player that unlocks raised on one all-regions board
    (`leaderboards.boards.Rise`)."""

    kind: str  # "game" | "global" | "season"
    scope: str  # game id or season id; "" for global
    player_id: str
    before: int
    after: int
    # Game rises: the friends passed. Rises recorded by the release before carry none.
    passed: NotRequired[list[PassedItem]]


class AwardItem(TypedDict):
    """An award (`achievements.models.Award`) the unlocks earned, at the event's `at`."""

    player_id: str
    game_id: str
    kind: str  # "beaten" | "mastered"


class UnlocksPayload(TypedDict):
    """kind "unlocks": written by the unlock statement (achievements/unlock.sql)."""

    at: str  # ISO 8601, the unlock time
    unlocks: list[Unlocked]
    rises: list[RiseItem]
    # Rows recorded by the release before awards carry none (docs/outbox.md, "Upgrading").
    awards: NotRequired[list[AwardItem]]


class BoardMovesPayload(TypedDict):
    """kind "board_moves": written by `achievements.tasks.relay_unlocks`."""

    rises: list[RiseItem]


class ReindexPayload(TypedDict):
    """kind "reindex": written by `leaderboards.sync.reindex_player_after_commit`."""

    players: list[str]


class SessionsPayload(TypedDict):
    """kind "sessions": written by `tracker.services` when a player's access is revoked."""

    player: str


PAYLOADS: dict[str, type] = {
    "unlocks": UnlocksPayload,
    "board_moves": BoardMovesPayload,
    "reindex": ReindexPayload,
    "sessions": SessionsPayload,
}

Payload = UnlocksPayload | BoardMovesPayload | ReindexPayload | SessionsPayload
Handler = Callable[[list[Any]], None]


def rise_item(rise: RiseItem | list[Any]) -> RiseItem:
    """A rise as named fields. Until the release after this one, also the list
    ``[kind, scope, player, before, after]`` that the previous release wrote into
    outbox rows and Celery messages still in flight at the upgrade."""
    if isinstance(rise, dict):
        return rise
    kind, scope, player_id, before, after = rise
    return {"kind": kind, "scope": scope, "player_id": player_id, "before": before, "after": after}


def upgraded(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """`payload` in the current shape of its kind. The previous release wrote the unlocks
    and rises of "unlocks" and "board_moves" as lists; rows it left pending at the
    upgrade are read through this for one release (docs/outbox.md, "Upgrading")."""
    if kind == "unlocks" and any(isinstance(u, list) for u in payload["unlocks"]):
        payload = {
            **payload,
            "unlocks": [
                u
                if isinstance(u, dict)
                else dict(zip(("player_id", "achievement_id", "game_id", "points"), u, strict=True))
                for u in payload["unlocks"]
            ],
        }
    if kind in {"unlocks", "board_moves"}:
        payload = {**payload, "rises": [rise_item(rise) for rise in payload["rises"]]}
    return payload


@cache
def handler_for(kind: str) -> Handler:
    return import_string(settings.OUTBOX_HANDLERS[kind])


def record(kind: str, payload: Payload) -> None:
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
        # Taken and deleted in one statement; the handler's failure rolls the delete back.
        with connection.cursor() as cursor:
            cursor.execute(_claim_sql(), [kind, limit])
            events = sorted(cursor.fetchall())
        if events:
            handler_for(kind)([upgraded(kind, json.loads(payload)) for _, payload in events])
    return len(events)


@cache
def _claim_sql() -> str:
    table = connection.ops.quote_name(OutboxEvent._meta.db_table)
    return (
        f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE kind = %s ORDER BY id LIMIT %s) "
        "RETURNING id, payload::text"
    )


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


def pending_kinds() -> set[str]:
    """The kinds that have an event pending, in one query (a loose scan of the (kind, id)
    index): a relay that looks often looks only at those, instead of taking each kind's
    lock and reading its batch to find it empty."""
    return set(OutboxEvent.objects.order_by().values_list("kind", flat=True).distinct())


def latest_id() -> int:
    """The last event id handed out: the id sequence, O(1) however many dead rows the
    table holds."""
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
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM {OutboxEvent._meta.db_table}")
