"""Counting round trips: SQL queries on the default database and calls to Redis, for the
tests that pin what a hot path costs (STYLE.md, "Hot paths")."""

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

from leaderboards.index import RedisStore


@dataclass
class Cost:
    sql: int = 0
    redis: int = 0


class Meter:
    """Counts round trips: queries on the default database, and calls through the app's
    Redis client, where a command (a Lua script's EVALSHA included) is one and a
    pipeline is one."""

    def __init__(self, store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.redis = 0
        command, pipeline = store.client.execute_command, redis.client.Pipeline.execute

        def counted_command(*args: Any, **options: Any) -> Any:
            self.redis += 1
            return command(*args, **options)

        def counted_pipeline(pipe: Any, *args: Any, **options: Any) -> Any:
            self.redis += 1
            return pipeline(pipe, *args, **options)

        monkeypatch.setattr(store.client, "execute_command", counted_command)
        monkeypatch.setattr(redis.client.Pipeline, "execute", counted_pipeline)

    @contextmanager
    def measure(self) -> Iterator[Cost]:
        cost = Cost()
        self.redis = 0
        with CaptureQueriesContext(connection) as queries:
            yield cost
        cost.sql, cost.redis = len(queries), self.redis

    def read(self, client: APIClient, url: str) -> tuple[Response, Cost]:
        """GET `url` once to warm up (scripts loaded, catalogue filled), then measured."""
        assert client.get(url).status_code == 200
        with self.measure() as cost:
            response = client.get(url)
        assert response.status_code == 200, response.content
        return response, cost
