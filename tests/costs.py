"""Counting round trips: SQL queries on the default database and calls to Redis, for the
tests that pin what a hot path costs. A hot path (the unlock, the board reads) may leave the
ORM for hand-written SQL or a Lua script; a test pinning its round trips keeps it fast.

The rate limiter (infra/ratelimits.py) has a Redis client of its own; its calls are
counted apart (`Cost.limiter`), so the rank index's pins keep their meaning and every
request's one charge to the limiter is pinned beside them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.response import Response
from rest_framework.test import APIClient

from infra import ratelimits
from leaderboards.index import RedisStore


@dataclass
class Cost:
    sql: int = 0
    redis: int = 0  # the app's Redis client: the rank index (and any pipeline)
    limiter: int = 0  # the rate limiter's Redis client


class Meter:
    """Counts round trips: queries on the default database, and calls through the app's
    Redis client and through the rate limiter's, where a command (a Lua script's EVALSHA
    included) is one and a pipeline is one."""

    def __init__(self, store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.redis = self.limiter = 0
        command, pipeline = store.client.execute_command, redis.client.Pipeline.execute
        shared = ratelimits.limiter().shared
        assert shared is not None, "the limiter counts in Redis when REDIS_URL is set"
        limiter_client = shared.storage.get_connection()
        limiter_command = limiter_client.execute_command

        def counted_command(*args: Any, **options: Any) -> Any:
            self.redis += 1
            return command(*args, **options)

        def counted_pipeline(pipe: Any, *args: Any, **options: Any) -> Any:
            self.redis += 1
            return pipeline(pipe, *args, **options)

        def counted_limiter_command(*args: Any, **options: Any) -> Any:
            self.limiter += 1
            return limiter_command(*args, **options)

        monkeypatch.setattr(store.client, "execute_command", counted_command)
        monkeypatch.setattr(limiter_client, "execute_command", counted_limiter_command)
        monkeypatch.setattr(redis.client.Pipeline, "execute", counted_pipeline)

    @contextmanager
    def measure(self) -> Iterator[Cost]:
        cost = Cost()
        self.redis = self.limiter = 0
        with CaptureQueriesContext(connection) as queries:
            yield cost
        cost.sql, cost.redis, cost.limiter = len(queries), self.redis, self.limiter

    def read(self, client: APIClient, url: str) -> tuple[Response, Cost]:
        """GET `url` once to warm up (scripts loaded, catalogue filled), then measured.
        Every read pays the rate limiter exactly one round trip (one EVALSHA), checked here
        for all of them."""
        assert client.get(url).status_code == 200
        with self.measure() as cost:
            response = client.get(url)
        assert response.status_code == 200, response.content
        assert cost.limiter == 1, f"the rate limiter cost {cost.limiter} round trips"
        return response, cost
