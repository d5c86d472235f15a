"""/healthz and /readyz, as a load balancer or an orchestrator probes them."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    """A port nothing listens on (bound and released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_healthz_answers_while_the_process_serves() -> None:
    response = Client().get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_names_every_configured_service_and_answers_200_when_all_answer(settings: Any) -> None:
    response = Client().get("/readyz")
    assert response.status_code == 200, response.json()
    expected = {"database"} | ({"redis"} if settings.REDIS_URL else set())
    expected |= {"broker"} if settings.CELERY_BROKER_URL else set()
    assert response.json() == {"status": "ok", "checks": dict.fromkeys(expected, "ok")}


def test_readyz_answers_503_naming_an_unreachable_redis(settings: Any) -> None:
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"].startswith("down: ")
    assert body["checks"]["database"] == "ok"


def test_readyz_answers_503_naming_an_unreachable_broker(settings: Any) -> None:
    settings.CELERY_BROKER_URL = f"amqp://guest:guest@127.0.0.1:{closed_port()}//"
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"].startswith("down: ")


def test_healthz_stays_up_when_a_dependency_is_down(settings: Any) -> None:
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    assert Client().get("/healthz").status_code == 200
