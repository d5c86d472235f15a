"""Bad requests of every kind get the one JSON error shape and the right status, never a 500."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.db import OperationalError, connection

from infra.errors import is_pool_exhausted
from tests.conftest import Api
from tests.helpers import UNLOCK_URL, assert_error, snapshot
from tracker.models import Game, Player


@pytest.fixture
def client(api: Api, game_key: str) -> Any:
    return api.as_key(game_key)


def raw_post(client: Any, path: str, data: str | bytes, content_type: str = "application/json") -> Any:
    return client.post(path, data=data, content_type=content_type)


def test_malformed_json_is_400(client: Any, alice: Player) -> None:
    before = snapshot()

    error = assert_error(raw_post(client, UNLOCK_URL, '{"player_id": '), 400, "parse_error")

    assert "JSON" in error["message"]
    assert snapshot() == before


def test_malformed_json_is_400_on_an_endpoint_without_authentication(api: Api, db: Any) -> None:
    assert_error(raw_post(api.anonymous(), "/api/v1/players/", "{nope"), 400, "parse_error")
    assert not Player.objects.exists()


@pytest.mark.parametrize("body", ["[]", '["player_id"]', '"unlock"', "42", "null"])
def test_a_json_body_that_is_not_an_object_is_400(client: Any, alice: Player, body: str) -> None:
    before = snapshot()

    assert_error(raw_post(client, UNLOCK_URL, body), 400, "invalid")
    assert snapshot() == before


def test_an_empty_body_names_the_missing_fields(client: Any, alice: Player) -> None:
    error = assert_error(raw_post(client, UNLOCK_URL, ""), 400, "invalid")

    assert "player_id" in error["fields"]


def test_wrong_types_are_400_naming_each_field(client: Any, alice: Player, game: Game) -> None:
    before = snapshot()
    body = {"player_id": {"id": 1}, "achievement_id": ["not", "a", "uuid"], "timestamp": "yesterday-ish"}

    error = assert_error(client.post(UNLOCK_URL, body, format="json"), 400, "invalid")

    assert {"player_id", "achievement_id", "timestamp"} <= set(error["fields"])
    assert all(isinstance(messages, list) and messages for messages in error["fields"].values())
    assert snapshot() == before


def test_an_unknown_top_level_field_is_400(client: Any, alice: Player) -> None:
    before = snapshot()
    body = {"player_id": str(alice.pk), "achievement": "ACE_PILOT", "points": 1000}

    error = assert_error(client.post(UNLOCK_URL, body, format="json"), 400, "invalid")

    assert error["fields"] == {"points": ["Unknown field."]}
    assert snapshot() == before


def test_a_form_encoded_body_is_415(client: Any, alice: Player) -> None:
    before = snapshot()
    form = f"player_id={alice.pk}&achievement=ACE_PILOT"

    response = raw_post(client, UNLOCK_URL, form, "application/x-www-form-urlencoded")

    assert_error(response, 415, "unsupported_media_type")
    assert snapshot() == before


def oversized_unlock(alice: Player) -> str:
    padding = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    return json.dumps({"player_id": str(alice.pk), "achievement": "ACE_PILOT", "padding": padding})


def test_a_body_over_the_size_limit_is_413(client: Any, alice: Player) -> None:
    before = snapshot()

    assert_error(raw_post(client, UNLOCK_URL, oversized_unlock(alice)), 413)
    assert snapshot() == before


def test_a_body_over_the_size_limit_says_too_large(client: Any, alice: Player) -> None:
    assert_error(raw_post(client, UNLOCK_URL, oversized_unlock(alice)), 413, "too_large")


@pytest.mark.parametrize("debug", [False, True], ids=["DEBUG off", "DEBUG on"])
@pytest.mark.parametrize(
    "path", ["/api/v1/nope", "/api/v1/nothing-here", "/api/v1/achievements/unlock/nope", "/api/v2/games/", "/api/"]
)
def test_an_unknown_api_path_is_a_json_404(api: Api, db: Any, settings: Any, path: str, debug: bool) -> None:
    settings.DEBUG = debug
    assert_error(api.anonymous().get(path), 404, "not_found")
    assert_error(api.anonymous().post(path, {}, format="json"), 404, "not_found")
    assert_error(api.anonymous().delete(path), 404, "not_found")


def test_an_unknown_page_is_still_an_html_404(client: Any, db: Any, settings: Any) -> None:
    settings.DEBUG = True
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_the_api_schema_and_docs_without_their_slash_redirect_to_it(client: Any, db: Any) -> None:
    for path in ("/api/schema", "/api/docs"):
        response = client.get(path + "?format=json")
        assert response.status_code == 301
        assert response["Location"] == path + "/?format=json"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", UNLOCK_URL),
        ("delete", UNLOCK_URL),
        ("get", "/api/v1/achievements/unlock/batch"),
        ("patch", "/api/v1/achievements/progress"),
        ("get", "/api/v1/players/"),
        ("post", "/api/v1/games/"),
    ],
)
def test_a_wrong_method_is_a_json_405(client: Any, method: str, path: str) -> None:
    response = getattr(client, method)(path)

    assert_error(response, 405, "method_not_allowed")
    assert method.upper() not in response["Allow"]


@pytest.fixture
def pool_exhausted(db: Any) -> Iterator[None]:
    """Every query of the request finds the connection pool empty, raised the way Django
    raises it when psycopg_pool times out (the real pool: tests/test_asgi_burst.py)."""
    from psycopg_pool import PoolTimeout

    def no_connection() -> None:
        with connection.wrap_database_errors:
            raise PoolTimeout("couldn't get a connection after 5.00 sec")

    # Not monkeypatch: it is undone after the test database's rollback, which needs a connection.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(connection, "ensure_connection", no_connection)
        yield


def test_an_api_request_that_gets_no_database_connection_is_a_json_503(
    api: Api, pool_exhausted: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="questboard.database"):
        response = api.anonymous().get("/api/v1/games/")

    assert_error(response, 503, "unavailable")
    assert int(response["Retry-After"]) > 0
    assert "no database connection for GET /api/v1/games/" in caplog.text
    assert {record.request_id for record in caplog.records} == {response["X-Request-ID"]}


def test_a_page_that_gets_no_database_connection_is_a_503_too(api: Api, pool_exhausted: None) -> None:
    response = api.anonymous().get("/leaderboards/")

    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0


def test_a_pool_running_dry_is_told_from_a_closed_pool_and_from_the_server_refusing() -> None:
    from psycopg_pool import PoolClosed, PoolTimeout, TooManyRequests

    def as_django_raises(error: Exception) -> OperationalError:
        wrapped = OperationalError(str(error))
        wrapped.__cause__ = error
        return wrapped

    assert is_pool_exhausted(as_django_raises(PoolTimeout("couldn't get a connection after 5.00 sec")))
    assert is_pool_exhausted(as_django_raises(TooManyRequests("the pool has already 10 requests waiting")))
    assert not is_pool_exhausted(as_django_raises(PoolClosed("the pool is closed")))
    assert not is_pool_exhausted(OperationalError("too many clients already"))
