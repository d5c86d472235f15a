"""Read replicas: which database each query goes to (docs/replicas.md).

With replicas configured (DATABASE_REPLICA_URLS: aliases ``replica1``, ``replica2``, ...)
the router sends a read to a replica only inside a *read scope*: a web request
(infra.middleware.ReplicaReadMiddleware) or a `stale_reads()` block. Everything else
reads the primary: Celery tasks, consumers and commands unless they opt in, and within a
scope:

- writes of every kind, and any read inside a transaction (``atomic``) on the primary;
- every read of a request with an unsafe method (POST, PUT, PATCH, DELETE), and every read
  after the request wrote (the ORM's writes are seen by the router; raw SQL writes call
  `pin_players`);
- every read of a *pinned* caller: one that wrote, or whose data a game server changed,
  within the last REPLICA_PIN_SECONDS (read your own writes), and of any caller while the
  pins cannot be read (Redis down: unsure means the primary);
- reads of the tables that decide who is signed in (sessions, the token blacklist, game
  keys): a stale row there would sign someone out or let a revoked key in.

A scope reads one replica throughout, so a page never mixes two replicas' pasts. A
replica that refuses a connection is skipped by this process for REPLICA_RETRY_SECONDS;
a safe request whose replica failed mid-way is answered again from the primary (the
middleware). With no replica configured none of this is installed.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.db import DEFAULT_DB_ALIAS, DatabaseError, InterfaceError, OperationalError, connections, transaction
from django.db.models import Model
from django.http import HttpRequest
from redis.exceptions import RedisError

log = logging.getLogger("questboard.replicas")

PRIMARY = DEFAULT_DB_ALIAS
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Who is signed in, and with what: read stale, a fresh sign-in would look signed out and a
# revoked key or refresh token would still work for as long as the replica lags.
PRIMARY_ONLY_APPS = frozenset({"sessions", "token_blacklist"})
PRIMARY_ONLY_MODELS = frozenset({"tracker.gamekey"})
PIN_KEY_PREFIX = "questboard:replica-pin:"


def replica_aliases() -> list[str]:
    return list(getattr(settings, "DATABASE_REPLICAS", []))


# --- Replica health, per process -------------------------------------------------------

# alias -> time.monotonic() until which this process leaves the replica alone.
_down_until: dict[str, float] = {}


def mark_down(alias: str, error: BaseException) -> None:
    """Leave `alias` alone for REPLICA_RETRY_SECONDS: a stopped replica then costs one
    failed connection per process per period, not one per request."""
    already = _down_until.get(alias, 0.0) > time.monotonic()
    _down_until[alias] = time.monotonic() + settings.REPLICA_RETRY_SECONDS
    with contextlib.suppress(DatabaseError):
        connections[alias].close()
    if not already:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        log.warning(
            "replica %s failed (%s); its reads go to the primary, retried in %d s",
            alias,
            reason,
            settings.REPLICA_RETRY_SECONDS,
        )


def healthy_replicas() -> list[str]:
    now = time.monotonic()
    return [alias for alias in replica_aliases() if _down_until.get(alias, 0.0) <= now]


def choose_replica() -> str:
    """A healthy replica, at random, connected; the primary when none answers.

    Connecting here, not at the first query, lets a stopped replica be passed over before
    any of the request's work depends on it. An open connection costs nothing to check; a
    replica that died under one is caught when its query fails (`replica_failed`)."""
    candidates = healthy_replicas()
    random.shuffle(candidates)
    for alias in candidates:
        try:
            connections[alias].ensure_connection()
        except DatabaseError as error:
            mark_down(alias, error)
            continue
        return alias
    return PRIMARY


# --- Pins: read your own writes --------------------------------------------------------

# time.monotonic() until which this process cannot trust the pin store (Redis failed).
_pins_unknown_until = 0.0


def player_subject(player_id: object) -> str:
    return f"player:{player_id}"


def _pin_client() -> Any:
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def _pin_store_failed(error: RedisError) -> None:
    """For a pin window after a failure this process reads the primary for every caller:
    a pin it could not write, or one it could not read, may be in force."""
    global _pins_unknown_until
    if _pins_unknown_until <= time.monotonic():
        log.warning("replica pins: Redis failed (%s); callers read the primary for %d s", error, pin_seconds())
    _pins_unknown_until = time.monotonic() + pin_seconds()


def pin_seconds() -> int:
    return int(settings.REPLICA_PIN_SECONDS)


def write_pins(subjects: Iterable[str]) -> None:
    """Pin these callers to the primary for REPLICA_PIN_SECONDS from now: one pipelined
    round trip, each key expiring by itself."""
    subjects = sorted(set(subjects))
    if not subjects:
        return
    try:
        with _pin_client().pipeline(transaction=False) as pipe:
            for subject in subjects:
                pipe.set(PIN_KEY_PREFIX + subject, 1, ex=pin_seconds())
            pipe.execute()
    except RedisError as error:
        _pin_store_failed(error)


def any_pinned(subjects: Iterable[str]) -> bool:
    """Whether any of these callers is pinned; True when that cannot be known."""
    subjects = list(subjects)
    if not subjects:
        return False
    if _pins_unknown_until > time.monotonic():
        return True
    try:
        return bool(_pin_client().exists(*(PIN_KEY_PREFIX + subject for subject in subjects)))
    except RedisError as error:
        _pin_store_failed(error)
        return True


def reset() -> None:
    """Forget every replica failure and pin-store outage (tests)."""
    global _pins_unknown_until
    _down_until.clear()
    _pins_unknown_until = 0.0


def caller_subjects(request: HttpRequest) -> list[str]:
    """Who is calling, as pins name them, without touching the database: the player of a
    valid access token or of the session, or the game key by its prefix.

    Read from the request itself because routing starts before DRF authenticates (its
    authentication reads the player, and that read must already know where to go). A token
    that fails to validate names nobody: the request is refused anyway."""
    scheme, _, credential = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    credential = credential.strip()
    if scheme == "Bearer" and credential:
        from rest_framework_simplejwt.exceptions import TokenError
        from rest_framework_simplejwt.settings import api_settings
        from rest_framework_simplejwt.tokens import AccessToken

        try:
            player_id = AccessToken(credential).get(api_settings.USER_ID_CLAIM)  # type: ignore[arg-type]
        except TokenError:
            return []
        return [player_subject(player_id)] if player_id else []
    if scheme == "Api-Key" and "." in credential:
        return [f"key:{credential.partition('.')[0]}"]
    session = getattr(request, "session", None)
    player_id = session.get(SESSION_KEY) if session is not None else None
    return [player_subject(player_id)] if player_id else []


# --- Read scopes -----------------------------------------------------------------------


@dataclass
class ReadScope:
    """Where the reads of one request (or `stale_reads` block) go, decided lazily: the
    pins are looked up at the first read that could go to a replica, not before."""

    subjects: Callable[[], list[str]] = list
    primary: bool = False  # every read from here on goes to the primary
    replica: str | None = None  # the database chosen for this scope's replica reads
    pins: set[str] = field(default_factory=set)  # callers to pin when the scope ends
    wrote: bool = False
    replica_failed: bool = False
    status: int = 0  # of the request's response, once known

    def read_alias(self) -> str:
        if self.primary:
            return PRIMARY
        if self.replica is None:
            if any_pinned(self.subjects()):
                self.primary = True
                return PRIMARY
            self.replica = choose_replica()
        return self.replica

    def note_write(self, instance: Model | None) -> None:
        """The rest of the scope reads the primary; the player whose row (or whose own row
        of another table) was written is pinned when the scope ends."""
        self.wrote = self.primary = True
        if instance is None:
            return
        if instance._meta.label == settings.AUTH_USER_MODEL:
            self.pins.add(player_subject(instance.pk))
        elif getattr(instance, "player_id", None) is not None:
            self.pins.add(player_subject(instance.player_id))  # type: ignore[attr-defined]

    @property
    def read_a_replica(self) -> bool:
        return self.replica is not None and self.replica != PRIMARY


_scope: ContextVar[ReadScope | None] = ContextVar("questboard_read_scope", default=None)


@contextmanager
def request_reads(request: HttpRequest) -> Iterator[ReadScope]:
    """The read scope of one web request. A request with an unsafe method reads the
    primary throughout. When it ends, a request that wrote, or had an unsafe method and was
    not refused (its `status` under 400, or unknown), pins its caller and the players whose
    data it changed."""
    unsafe = request.method not in SAFE_METHODS
    scope = ReadScope(subjects=lambda: caller_subjects(request), primary=unsafe)
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)
        if scope.wrote or (unsafe and scope.status < 400):
            # The caller is named again here: a sign-in put a player into the session.
            write_pins([*caller_subjects(request), *scope.pins])


@contextmanager
def stale_reads() -> Iterator[ReadScope]:
    """Let the reads inside go to a replica (a task computing aggregates it may show a few
    seconds late). Writes still go to the primary, and so does every read after one."""
    scope = ReadScope()
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)
        if scope.pins:
            write_pins(scope.pins)


def pin_players(player_ids: Iterable[object]) -> None:
    """Pin these players' reads to the primary for REPLICA_PIN_SECONDS from the commit of
    the current transaction (at once outside one). For writes the router does not see, by
    raw SQL: the unlock, made by a game server, which the player then reads in a browser.
    Inside a request the pins are written with the caller's when the request ends, and the
    rest of the request reads the primary. Free when no replica is configured."""
    if not replica_aliases():
        return
    subjects = {player_subject(player_id) for player_id in player_ids}
    scope = _scope.get()
    if scope is not None:
        scope.wrote = scope.primary = True
        scope.pins.update(subjects)
    elif subjects:
        transaction.on_commit(lambda: write_pins(subjects), robust=True)


def replica_failed(exception: BaseException) -> bool:
    """Whether `exception` broke a read that went to a replica in the current scope. If so
    the replica is left alone when its connection is gone, and the scope reads the primary
    from now on: the middleware answers the request again from there.

    Any connection-level error counts (OperationalError, InterfaceError), a replica's own
    "conflict with recovery" cancellation included: the primary never has that one."""
    scope = _scope.get()
    if scope is None or not scope.read_a_replica or scope.replica_failed:
        return False  # no replica was read, or this is already the primary's answer
    if not isinstance(exception, (OperationalError, InterfaceError)):
        return False
    alias = scope.replica
    assert alias is not None
    connection = connections[alias]
    if connection.connection is None or not connection.is_usable():
        mark_down(alias, exception)
    scope.replica_failed = scope.primary = True
    return True


# --- The router ------------------------------------------------------------------------


class ReplicaRouter:
    """DATABASE_ROUTERS entry, installed only when replicas are configured."""

    def db_for_read(self, model: type[Model], **hints: Any) -> str:
        scope = _scope.get()
        if scope is None or scope.primary:
            return PRIMARY
        meta = model._meta
        if meta.app_label in PRIMARY_ONLY_APPS or meta.label_lower in PRIMARY_ONLY_MODELS:
            return PRIMARY
        # Inside a transaction a read belongs with the writes around it, on the primary.
        if connections[PRIMARY].in_atomic_block:
            return PRIMARY
        return scope.read_alias()

    def db_for_write(self, model: type[Model], **hints: Any) -> str:
        scope = _scope.get()
        if scope is not None:
            scope.note_write(hints.get("instance"))
        return PRIMARY

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool:
        return True  # every alias holds the same rows

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool:
        return db == PRIMARY  # replicas follow the primary's schema through replication
