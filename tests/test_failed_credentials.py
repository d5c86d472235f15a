"""Guessing API keys and tokens is limited as signing in is (issue 19): every key or bearer
token that fails is charged to its address (`RATE_LIMIT_ANONYMOUS`, a budget of its own;
infra/ratelimits.py `credentials_checked`, docs/rate-limits.md). Past it the caller gets
429 with Retry-After in the one error shape, before any lookup, while the keys already at
work there and every key elsewhere keep working. At the production defaults, as in
tests/test_rate_limits.py."""

from __future__ import annotations

import http.client
import json
import secrets
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.response import Response
from rest_framework.test import APIClient

import config.settings as production
from infra import ratelimits
from tests.conftest import Api
from tests.helpers import assert_error, clear_of_a_minute_edge
from tests.servers import RATE_LIMIT_SETTINGS, Server, gunicorn, running
from tracker.models import Game, Player

GAMES_URL = "/api/v1/games/"
GUESSES = 800
BUDGET = 60  # RATE_LIMIT_ANONYMOUS's production default, per address
GUESSER = "203.0.113.7"
STUDIO = "198.51.100.2"


@pytest.fixture(autouse=True)
def production_limits(settings: Any) -> Iterator[None]:
    for name in RATE_LIMIT_SETTINGS:
        setattr(settings, name, getattr(production, name))
    assert settings.RATE_LIMIT_ANONYMOUS == f"{BUDGET}/minute"
    ratelimits.reset()
    clear_of_a_minute_edge(burst_seconds=20)
    yield
    ratelimits.reset()


def made_up_key() -> str:
    return f"{secrets.token_hex(4)}.{secrets.token_urlsafe(24)}"


def guess(header: str, *, address: str = GUESSER, forwarded_for: str | None = None) -> Response:
    extra = {"HTTP_X_FORWARDED_FOR": forwarded_for} if forwarded_for else {}
    return APIClient().get(GAMES_URL, HTTP_AUTHORIZATION=header, REMOTE_ADDR=address, **extra)


def assert_throttled(response: Response) -> None:
    assert_error(response, 429, "throttled")
    assert 1 <= int(response["Retry-After"]) <= 61


def test_800_wrong_api_keys_from_one_address_get_401_until_its_budget_then_429(game: Game, game_key: str) -> None:
    # Each with a new X-Forwarded-For: with no trusted proxy it names no one.
    answers = [guess(f"Api-Key {made_up_key()}", forwarded_for=f"10.9.{n // 250}.{n % 250}") for n in range(GUESSES)]

    assert Counter(a.status_code for a in answers) == {401: BUDGET, 429: GUESSES - BUDGET}
    assert all(a.status_code == 401 for a in answers[:BUDGET])
    for refused in answers[BUDGET:]:
        assert_throttled(refused)
    # The studio's servers, elsewhere, are not touched.
    assert guess(f"Api-Key {game_key}", address=STUDIO).status_code == 200


def test_over_its_budget_an_address_costs_no_database_lookup_for_a_made_up_key(db: Any) -> None:
    for _ in range(BUDGET + 1):
        guess(f"Api-Key {made_up_key()}")

    with CaptureQueriesContext(connection) as queries:
        refused = guess(f"Api-Key {made_up_key()}")

    assert_throttled(refused)
    assert len(queries) == 0, [q["sql"] for q in queries]


def test_over_its_budget_an_address_keeps_its_working_key_but_a_new_one_waits(
    game: Game, game_key: str, other_game_key: str
) -> None:
    """A rotation's stale key retried by one server must not lock out the servers beside it
    with the good key: a key this process has checked already still passes, unchecked ones
    (a first use, like a guess) wait out the window."""
    assert guess(f"Api-Key {game_key}").status_code == 200  # the good servers, already at work
    for _ in range(BUDGET + 1):
        guess(f"Api-Key {made_up_key()}")  # the stale one, over and over

    assert guess(f"Api-Key {game_key}").status_code == 200
    assert_throttled(guess(f"Api-Key {other_game_key}"))
    assert guess(f"Api-Key {other_game_key}", address=STUDIO).status_code == 200


def test_wrong_bearer_tokens_are_charged_to_the_same_budget_and_right_ones_are_not(api: Api, alice: Player) -> None:
    player = api.as_player(alice)
    right = [player.get(GAMES_URL, REMOTE_ADDR=GUESSER) for _ in range(BUDGET)]
    forged = [guess(f"Bearer {secrets.token_urlsafe(40)}") for _ in range(BUDGET // 2)]
    malformed = [guess(f"Api-Key {'x' * 12}") for _ in range(BUDGET // 2)]  # no prefix at all
    refused = guess("Bearer not.a.token")

    assert [a.status_code for a in right] == [200] * BUDGET
    assert [a.status_code for a in forged + malformed] == [401] * BUDGET
    assert_throttled(refused)
    # A token with our signature still passes from there: forging one is hopeless.
    assert player.get(GAMES_URL, REMOTE_ADDR=GUESSER).status_code == 200
    assert player.get(GAMES_URL, REMOTE_ADDR=STUDIO).status_code == 200


# --- Across processes ----------------------------------------------------------------------


def get(server: Server, key: str, source: str) -> tuple[int, dict[str, str], bytes]:
    """GET the games list with an API key, from a loopback address of our choosing (Linux
    routes all of 127/8 to this host), so the server sees two callers."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60, source_address=(source, 0))
    try:
        connection.request("GET", GAMES_URL, headers={"Authorization": f"Api-Key {key}"})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_guesses_spread_over_two_worker_processes_get_exactly_the_budget(
    tmp_path: Path, game: Game, game_key: str
) -> None:
    start = threading.Barrier(20)
    defaults = {name: getattr(production, name) for name in RATE_LIMIT_SETTINGS}

    def fire(server: Server) -> tuple[int, dict[str, str], bytes]:
        start.wait()  # twenty at a time, so both workers take guesses
        return get(server, made_up_key(), "127.0.0.1")

    with running({"gunicorn": lambda port: gunicorn(port, workers=2)}, tmp_path, defaults) as [server]:
        with ThreadPoolExecutor(max_workers=20) as executor:
            answers = list(executor.map(fire, [server] * GUESSES))
        studio = get(server, game_key, "127.0.0.2")

    assert Counter(status for status, _, _ in answers) == {401: BUDGET, 429: GUESSES - BUDGET}
    for status, headers, body in answers:
        if status == 429:
            assert int(headers["retry-after"]) >= 1
            assert json.loads(body)["error"]["code"] == "throttled"
    assert studio[0] == 200
