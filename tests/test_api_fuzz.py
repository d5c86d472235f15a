"""The whole API under Schemathesis: requests generated from the app's own OpenAPI schema
(`/api/schema/`), valid and invalid alike, sent as an anonymous caller, a game server and a
player; each must be answered without a server error and, where the schema documents the
status, with a body as documented.

In-process (WSGI) against the test database and the cast of tests/conftest.py. Player ids
in paths and bodies are often the cast's (generated as stand-ins, swapped for the real ids
just before the call), games theirs by slug, usernames and the password theirs, so that
requests get past the 404 (and the 401 of a sign-in) and what the endpoints answer is
checked too. Generation is seeded: the suite sends the same
requests every run, and a failure reproduces.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.conftest import PASSWORD
from tests.servers import RATE_LIMIT_SETTINGS
from tracker.models import Game, Player

# Generated requests per operation and caller: ~35 operations x 3 callers x this many,
# under a minute on a 2-core machine.
EXAMPLES = 15
CHECKS = [not_a_server_error, response_schema_conformance]

# Stand-ins for the cast's ids, which exist only once a test has created them.
STAND_INS = {
    "alice": "00000000-0000-4000-8000-0000000a11ce",
    "bob": "00000000-0000-4000-8000-000000000b0b",
    "charlie": "00000000-0000-4000-8000-00000c4a211e",
}

CONFIG = {
    "seed": 20261202,
    "suppress-health-check": ["all"],
    "generation": {"mode": "all", "max-examples": EXAMPLES, "database": "none"},
    # The examples and coverage phases add requests per operation that max-examples does
    # not bound; fuzzing alone keeps the module's running time predictable.
    "phases": {"examples": {"enabled": False}, "coverage": {"enabled": False}},
    "dictionaries": {
        "players": {"values": list(STAND_INS.values())},
        "games": {"values": ["star-raiders", "moon-miners"]},
        "achievements": {"values": ["FIRST_FLIGHT", "ACE_PILOT", "SECRET_ENDING", "KILL_100"]},
        "usernames": {"values": list(STAND_INS)},
        "passwords": {"values": [PASSWORD]},
    },
    "parameters": {
        "path.player_id": {"dictionary": "players", "probability": 0.7},
        "path.game_id": {"dictionary": "games", "probability": 0.7},
        "query.game": {"dictionary": "games", "probability": 0.5},
        "body.player_id": {"dictionary": "players", "probability": 0.7},
        "body.game_id": {"dictionary": "games", "probability": 0.5},
        "body.achievement": {"dictionary": "achievements", "probability": 0.5},
        "body.username": {"dictionary": "usernames", "probability": 0.5},
        "body.password": {"dictionary": "passwords", "probability": 0.5},
    },
}

schema = schemathesis.openapi.from_wsgi(
    "/api/schema/", get_wsgi_application(), config=SchemathesisConfig.from_dict(CONFIG)
)


@pytest.fixture(autouse=True)
def _no_rate_limits(settings: Any) -> None:
    """Hundreds of requests a minute from one caller are the point here, not abuse: a 429
    would only stand in for the answer under test."""
    for name in RATE_LIMIT_SETTINGS:
        setattr(settings, name, "1000000/minute")


@pytest.fixture(autouse=True)
def _test_transaction_kept_open() -> Iterator[None]:
    """As Django's test client does: a real WSGI handler closes the database connection when
    a request finishes, and with it the test's transaction."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def real_ids(alice: Player, bob: Player, charlie: Player, game: Game, other_game: Game) -> dict[str, str]:
    cast = {"alice": alice, "bob": bob, "charlie": charlie}
    return {stand_in: str(cast[name].pk) for name, stand_in in STAND_INS.items()}


@pytest.fixture(params=["anonymous", "game key", "player"])
def credentials(request: pytest.FixtureRequest, alice: Player, game_key: str) -> dict[str, str]:
    if request.param == "game key":
        return {"Authorization": f"Api-Key {game_key}"}
    if request.param == "player":
        return {"Authorization": f"Bearer {RefreshToken.for_user(alice).access_token}"}
    return {}


def swapped(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return ids.get(value, value)
    if isinstance(value, list):
        return [swapped(item, ids) for item in value]
    if isinstance(value, dict):
        return {key: swapped(item, ids) for key, item in value.items()}
    return value


@schema.parametrize()
def test_the_api_answers_generated_requests_as_documented(
    case: Any, credentials: dict[str, str], real_ids: dict[str, str]
) -> None:
    if case.path_parameters:
        case.path_parameters = swapped(case.path_parameters, real_ids)
    if case.query:
        case.query = swapped(case.query, real_ids)
    if isinstance(case.body, dict | list):
        case.body = swapped(case.body, real_ids)
    case.call_and_validate(headers=credentials, checks=CHECKS)
