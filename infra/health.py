"""Health checks for load balancers and orchestrators.

- ``/healthz``: the process is up and serving (no dependency is touched: a database outage
  must not get every web process restarted).
- ``/readyz``: whether the services this process needs answer — PostgreSQL, and Redis and
  the broker when configured — each named, with why, when it does not. 503 if any is down.
"""

from __future__ import annotations

from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from kombu import Connection

# Seconds each check may take: a probe must answer before the prober gives up on it.
CHECK_TIMEOUT = 2.0


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _redis() -> None:
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=CHECK_TIMEOUT, socket_connect_timeout=CHECK_TIMEOUT
    )
    try:
        client.ping()
    finally:
        client.close()


def _broker() -> None:
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=CHECK_TIMEOUT) as broker:
        broker.connect()


def checks() -> dict[str, Callable[[], None]]:
    found: dict[str, Callable[[], None]] = {"database": _database}
    if settings.REDIS_URL:
        found["redis"] = _redis
    if settings.CELERY_BROKER_URL:
        found["broker"] = _broker
    return found


def readyz(request: HttpRequest) -> JsonResponse:
    results: dict[str, str] = {}
    for name, check in checks().items():
        try:
            check()
            results[name] = "ok"
        except Exception as error:  # any failure means "not ready"; the reason is reported
            results[name] = f"down: {type(error).__name__}: {error}"[:300]
    ready = all(result == "ok" for result in results.values())
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": results}, status=200 if ready else 503)
