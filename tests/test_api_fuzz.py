"""The whole API under Schemathesis: requests generated from the app's own OpenAPI schema
(`/api/schema/`), valid and invalid alike, sent as an anonymous caller, a game server and a
player, under every Schemathesis check: no server error; only documented status codes,
content types and headers, with bodies as documented; requests the schema calls valid
accepted and those it calls invalid refused; 405 for methods an operation does not take;
401 without the Authorization header an operation needs, and no operation that ignores it.
(The stateful checks, use_after_free and ensure_resource_availability, need a stateful run
over OpenAPI links, which this schema does not declare.)

In-process (WSGI) against the test database and the cast of tests/conftest.py. Player ids
in paths and bodies are often the cast's (generated as stand-ins, swapped for the real ids
just before the call), games theirs by slug, usernames and the password theirs, so that
requests get past the 404 (and the 401 of a sign-in) and what the endpoints answer is
checked too. Generation is seeded: the suite sends the same
requests every run, and a failure reproduces.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis.config import SchemathesisConfig

from tests.conftest import PASSWORD
from tests.servers import RATE_LIMIT_SETTINGS
from tracker.models import Game, Player

# Generated requests per operation and caller in the fuzzing phase: ~35 operations x 3
# callers x this many, on top of the coverage phase's boundary cases (below); the module
# runs in about two minutes on a 2-core machine.
EXAMPLES = 8

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
    # The coverage phase sends each operation's boundary cases (missing and extra fields,
    # wrong methods, a missing Authorization header): the checks for unsupported methods
    # and missing headers run only there. The schema has no examples to send.
    "phases": {"examples": {"enabled": False}, "coverage": {"enabled": True}},
    "dictionaries": {
        "players": {"values": list(STAND_INS.values())},
        "games": {"values": ["star-raiders", "moon-miners"]},
        "achievements": {"values": ["FIRST_FLIGHT", "ACE_PILOT", "SECRET_ENDING", "KILL_100"]},
        "usernames": {"values": list(STAND_INS)},
        "passwords": {"values": [PASSWORD]},
        # Progress is reported for an incremental achievement: the cast's game has one.
        "incremental": {"values": ["KILL_100"]},
        # Alice's friends-to-be: nobody may befriend themselves.
        "others": {"values": ["bob", "charlie"]},
        "other_players": {"values": [STAND_INS["bob"], STAND_INS["charlie"]]},
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

# Every check runs on every operation, except where a check cannot apply; each exception
# names its operations and says why.
CONFIG["operations"] = [
    {
        # Progress toward an achievement without a target is refused (400): name the one
        # that has one, or an unknown one (404).
        "include-operation-id": "report_progress",
        "parameters": {**CONFIG["parameters"], "body.achievement": {"dictionary": "incremental", "probability": 0.5}},
    },
    {
        # The player calling is alice, who cannot befriend herself (400).
        "include-operation-id": "send_friend_request",
        "parameters": {
            **CONFIG["parameters"],
            "body.username": {"dictionary": "others", "probability": 0.5},
            "body.player_id": {"dictionary": "other_players", "probability": 0.7},
        },
    },
    {
        # A batch answers 200 with a result per item: a bad item fails alone, and its
        # result says why (docs/api.md, "Batch unlocks"), so a schema-violating item is
        # not refused as a whole request would be.
        "include-operation-id": "unlock_achievements_batch",
        "checks": {"negative_data_rejection": {"enabled": False}},
    },
    {
        # Rules between fields that JSON Schema cannot state (said in the fields' and the 400s'
        # descriptions, tests/test_schema.py): a session ends after it starts
        # and not in the future; a date range starts before it ends and spans at most so many
        # days; a CSV table goes with format=csv; a refresh token must be one we issued, and
        # a feed cursor one the feed handed out (signed: docs/feed.md, "The cursor");
        # a password Django's validators find too common or too like the username.
        "include-operation-id-regex": (
            "^(report_play_session|get_player_history|get_game_analytics|log_out|register_player|list_feed)$"
        ),
        "checks": {"positive_data_acceptance": {"enabled": False}},
    },
]

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


def in_the_past(body: Any) -> Any:
    """An unlock's `timestamp` may not lie ahead of the server's clock, a rule of the moment
    the request arrives that no schema can state: a generated future one is moved to now."""
    if isinstance(body, list):
        return [in_the_past(item) for item in body]
    if not isinstance(body, dict):
        return body
    body = {key: in_the_past(value) for key, value in body.items()}
    stamp = body.get("timestamp")
    if isinstance(stamp, str):
        try:
            future = datetime.fromisoformat(stamp) > timezone.now()
        except (TypeError, ValueError):
            future = False
        if future:
            body["timestamp"] = timezone.now().isoformat()
    return body


@schema.parametrize()
def test_the_api_answers_generated_requests_as_documented(
    case: Any, credentials: dict[str, str], real_ids: dict[str, str]
) -> None:
    if case.path_parameters:
        case.path_parameters = swapped(case.path_parameters, real_ids)
    if case.query:
        case.query = swapped(case.query, real_ids)
    if isinstance(case.body, dict | list):
        case.body = in_the_past(swapped(case.body, real_ids))
    if case.operation.definition.raw.get("operationId") == "import_game_manifest" and isinstance(case.body, dict):
        # The manifest names its game twice, in the path and by its slug: they must agree.
        case.body["slug"] = case.path_parameters["game_id"]
    case.call_and_validate(headers=credentials)
