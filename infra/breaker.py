"""A circuit breaker for Redis, per process: after Redis failed to answer, stop asking it
for a while, and let a background ping find out when it is back.

A silent Redis (paused, overloaded, a network that drops packets) costs every call its
full REDIS_TIMEOUT. Without a breaker every request pays it, and a request that asks twice
(the unlock writes its scores, then reads its rank) pays twice. With one, the call that
times out opens the breaker, and for REDIS_BREAKER_SECONDS every call through it raises
`Open` at once: the rank index then answers from PostgreSQL, the cache fails as it would
without Redis (docs/leaderboards.md, "When Redis is silent"). The first call after that
period starts one ping in a thread of its own and is itself refused, like every call until
the ping settles it: an answer closes the breaker, another failure opens it for another
period. No request waits for a probe. Each change is logged once, a warning on opening and
a line at info on closing; a call refused meanwhile logs nothing.

Only an outage trips it: a connection refused or dropped, a timeout. An error Redis
answered with (a script's, a read-only replica's) shows it is there and is left to the
caller.

One breaker per Redis URL and process (`for_redis`), shared by the clients of that URL:
the cache and, when it lives there, the rank index. Threads of one process (gunicorn's
gthread workers, Daphne's pool) share it; processes do not, so each pays one timeout per
outage. pybreaker was not used: it holds one lock around every guarded call, so a
process's threads would queue behind the one waiting on a silent Redis.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar
from urllib.parse import urlparse

from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger("questboard.breaker")

P = ParamSpec("P")
T = TypeVar("T")

OUTAGES = (RedisConnectionError, RedisTimeoutError)


class Open(RedisConnectionError):
    """Raised instead of asking a Redis whose breaker is open. A RedisError (a connection
    error), so whatever handles a Redis outage handles this alike, without the wait."""


def is_outage(error: BaseException) -> bool:
    """A connection refused or dropped, or a timeout: as raised, or as the cause of what
    was raised (django-redis wraps it in ConnectionInterrupted)."""
    return isinstance(error, OUTAGES) or isinstance(error.__cause__, OUTAGES)


class Breaker:
    """Closed, Redis is asked; open, every call raises `Open` until a ping gets an answer.

    The open flag is read without the lock, so a closed breaker costs a call one attribute
    read; a call that races a change of state goes either way, which is harmless. The lock
    guards the changes, so each is made, and logged, once.
    """

    def __init__(self, name: str, *, open_seconds: float, ping: Callable[[], object]) -> None:
        self.name = name
        self.open_seconds = open_seconds
        self._ping = ping
        self._lock = threading.Lock()
        self._open = False
        self._probe_at = 0.0  # time.monotonic() from which the next ping may go

    @property
    def is_open(self) -> bool:
        return self._open

    def call(self, function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`function(*args, **kwargs)`, which asks Redis, unless the breaker is open."""
        if self._open:
            self._probe_if_due()
            raise Open(f"{self.name} is left alone for a while after it failed to answer")
        try:
            return function(*args, **kwargs)
        except Exception as error:
            if is_outage(error):
                self._failed(error)
            raise

    def _failed(self, error: BaseException) -> None:
        with self._lock:
            opened = not self._open
            self._open = True
            self._probe_at = time.monotonic() + self.open_seconds
        if opened:
            log.warning(
                "%s did not answer (%s): this process leaves it alone for %g s, then pings it",
                self.name,
                error.__cause__ or error,
                self.open_seconds,
            )

    def _closed(self) -> None:
        with self._lock:
            closing = self._open
            self._open = False
        if closing:
            log.info("%s answers again: this process asks it again", self.name)

    def _probe_if_due(self) -> None:
        """Start the ping when the open period is over, once: the next one may go only an
        open period later, should this one never settle."""
        now = time.monotonic()
        if now < self._probe_at:
            return
        with self._lock:
            if not self._open or now < self._probe_at:
                return
            self._probe_at = now + self.open_seconds
        threading.Thread(target=self._probe, name=f"ping {self.name}", daemon=True).start()

    def _probe(self) -> None:
        try:
            self._ping()
        except Exception as error:
            if is_outage(error):
                self._failed(error)
                return
            if not isinstance(error, RedisError):
                log.warning("pinging %s failed; it stays open", self.name, exc_info=True)
                return
        # An answer, even an error, is Redis answering.
        self._closed()


_breakers: dict[tuple[str, float], Breaker] = {}
_breakers_lock = threading.Lock()


def for_redis(url: str, ping: Callable[[], object]) -> Breaker:
    """This process's breaker for the Redis at `url`, made on first use with `ping` (a
    call that asks that Redis something small) as its probe. Made again if
    REDIS_BREAKER_SECONDS changed, as tests change it. No `url` (a client made by hand,
    in tests): a breaker of its own."""
    key = (url, float(settings.REDIS_BREAKER_SECONDS))
    if not url:
        return Breaker(described(url), open_seconds=key[1], ping=ping)
    found = _breakers.get(key)
    if found is None:
        with _breakers_lock:
            found = _breakers.get(key)
            if found is None:
                found = _breakers[key] = Breaker(described(url), open_seconds=key[1], ping=ping)
    return found


def described(url: str) -> str:
    """The Redis at `url` as logs name it: host, port and database, never a password."""
    parsed = urlparse(url)
    if not parsed.hostname:
        return "Redis"
    port = f":{parsed.port}" if parsed.port else ""
    return f"Redis at {parsed.hostname}{port}{parsed.path or ''}"


def reset() -> None:
    """Forget every breaker (tests)."""
    with _breakers_lock:
        _breakers.clear()
