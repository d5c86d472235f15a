"""The cache backend: django-redis's, behind this process's Redis breaker (`infra.breaker`).

django-redis raises when Redis does not answer, after REDIS_TIMEOUT, and every caller here
already treats a cache error as a miss or a step skipped: the share card is drawn
(`players.sharecard`), a rarity refresh is left to the periodic one, a beat slot is sent
anyway (`infra.beat`). What a silent Redis cost was that timeout on every call. Behind the
breaker the first call pays it; for REDIS_BREAKER_SECONDS after, each call fails at once,
the way django-redis fails (`breaker.Open`, a RedisError, re-raised; or swallowed with
IGNORE_EXCEPTIONS), until a ping finds Redis answering again.
"""

from __future__ import annotations

from typing import Any

from django_redis.cache import RedisCache as DjangoRedisCache
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError

from infra import breaker

# What the cache raises when Redis is away or its breaker is open: callers treat it as a
# miss, or a step skipped.
CACHE_ERRORS = (ConnectionInterrupted, RedisError)

# django-redis client methods that ask Redis nothing: `get_client` hands out the redis-py
# client (`get_redis_connection`, which the rank index and the replica pins use) and
# `close` lets connections go at the end of each request.
UNGUARDED = frozenset({"get_client", "close"})


class RedisCache(DjangoRedisCache):
    @property
    def client(self) -> Any:
        inner = super().client
        return Guarded(inner, breaker.for_redis(str(self._server), lambda: inner.get_client(write=True).ping()))


class Guarded:
    """A django-redis client whose calls to Redis go through a breaker. A refusal is raised
    as django-redis raises an outage (ConnectionInterrupted from its cause), so the cache
    methods treat it the same way."""

    def __init__(self, client: Any, guard: breaker.Breaker) -> None:
        self._client = client
        self._guard = guard

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._client, name)
        if name in UNGUARDED or not callable(found):
            return found

        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return self._guard.call(found, *args, **kwargs)
            except breaker.Open as refused:
                raise ConnectionInterrupted(connection=None) from refused

        return guarded
