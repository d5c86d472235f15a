"""Every request has an id, in its X-Request-ID header and on every log record it causes;
an unexpected exception is a 500 naming that id, logged with its traceback; and no client
input can forge a log line."""

from __future__ import annotations

import io
import logging
import re
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from infra import ratelimits
from infra.logs import SafeFormatter
from tests.conftest import Api
from tests.helpers import assert_error, clear_of_a_minute_edge
from tracker import api as tracker_api
from tracker.models import Player

GENERATED_ID = re.compile(r"[0-9a-f]{32}")
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} ")


def console_handler() -> logging.StreamHandler:
    """The handler LOGGING configures (pytest adds its own beside it)."""
    [handler] = [h for h in logging.getLogger("questboard.requests").handlers if isinstance(h.formatter, SafeFormatter)]
    assert isinstance(handler, logging.StreamHandler)
    return handler


@pytest.fixture
def console() -> Iterator[io.StringIO]:
    """What the configured console handler (its filter and formatter) writes."""
    handler = console_handler()
    out = io.StringIO()
    before = handler.setStream(out)
    yield out
    handler.setStream(before)


@pytest.fixture
def failing_view(monkeypatch: pytest.MonkeyPatch) -> None:
    """GET /api/v1/games/ and the home page raise, as a bug would."""

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the games table went away")

    monkeypatch.setattr(tracker_api.GameListApi, "get", broken)
    monkeypatch.setattr("players.views.render", broken)


def unraised() -> APIClient:
    """A client that gets the 500 response, as a real client does, not the exception."""
    return APIClient(raise_request_exception=False)


def test_every_response_carries_a_fresh_request_id(api: Api, alice: Player) -> None:
    ids = set()
    for path in ("/api/v1/games/", "/api/v1/nothing", "/", "/players/nobody/"):
        response = api.anonymous().get(path)
        assert GENERATED_ID.fullmatch(response["X-Request-ID"]), path
        ids.add(response["X-Request-ID"])

    assert len(ids) == 4


def test_a_sane_incoming_request_id_is_kept(api: Api, db: Any) -> None:
    response = api.anonymous().get("/api/v1/games/", HTTP_X_REQUEST_ID="lb-7f3a.2_b-9")

    assert response["X-Request-ID"] == "lb-7f3a.2_b-9"


@pytest.mark.parametrize("incoming", ["", "x" * 65, "abc def", "abc\r\nSet-Cookie: a=b", "id;drop", "ünïcode"])
def test_an_incoming_request_id_that_is_not_sane_is_replaced(api: Api, db: Any, incoming: str) -> None:
    response = api.anonymous().get("/api/v1/games/", HTTP_X_REQUEST_ID=incoming)

    assert GENERATED_ID.fullmatch(response["X-Request-ID"])


def test_a_refused_request_carries_its_id_too(api: Api, db: Any) -> None:
    response = api.anonymous().get("/api/v1/games/a%00b/achievements", HTTP_X_REQUEST_ID="refused-1")

    assert_error(response, 400)
    assert response["X-Request-ID"] == "refused-1"


def test_a_rate_limited_request_carries_its_id_too(api: Api, db: Any, settings: Any) -> None:
    settings.RATE_LIMIT_ANONYMOUS = "1/minute"
    ratelimits.reset()
    clear_of_a_minute_edge()
    client = api.anonymous()
    try:
        responses = [client.get("/api/v1/games/", HTTP_X_REQUEST_ID=f"burst-{n}") for n in range(2)]
    finally:
        ratelimits.reset()

    assert_error(responses[1], 429, "throttled")
    assert [r["X-Request-ID"] for r in responses] == ["burst-0", "burst-1"]


def test_the_request_log_line_names_the_request_id(api: Api, db: Any, console: io.StringIO) -> None:
    api.anonymous().get("/api/v1/games/", HTTP_X_REQUEST_ID="trace-42")

    [line] = [line for line in console.getvalue().splitlines() if "questboard.requests" in line]
    assert "[trace-42] GET /api/v1/games/ api/v1/games/ 200 " in line


def test_an_unexpected_exception_is_a_json_500_naming_the_request_id(db: Any, failing_view: None) -> None:
    response = unraised().get("/api/v1/games/")

    error = assert_error(response, 500, "server_error")
    request_id = response["X-Request-ID"]
    assert GENERATED_ID.fullmatch(request_id)
    assert request_id in error["message"]


def test_an_unexpected_exception_is_logged_with_its_traceback_and_the_request_id(
    db: Any, failing_view: None, caplog: pytest.LogCaptureFixture, console: io.StringIO
) -> None:
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = unraised().get("/api/v1/games/", HTTP_X_REQUEST_ID="bug-report-1")

    assert response.status_code == 500
    assert response["X-Request-ID"] == "bug-report-1"
    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert record.levelno == logging.ERROR
    assert record.request_id == "bug-report-1"
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)
    written = console.getvalue()
    assert "ERROR django.request [bug-report-1] Internal Server Error: /api/v1/games/" in written
    assert "Traceback (most recent call last):" in written
    assert "RuntimeError: the games table went away" in written


def test_a_page_that_raises_is_a_500_page_with_a_request_id(db: Any, failing_view: None) -> None:
    response = unraised().get("/")

    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")
    assert GENERATED_ID.fullmatch(response["X-Request-ID"])


FORGED = "2026-01-01 00:00:00,000 INFO questboard.requests [forged] GET /admin/ admin/ 200 1.0ms"


def genuine_records(written: str) -> list[str]:
    """Lines that start a record: a timestamp at column 0 (continuation lines are indented)."""
    return [line for line in written.splitlines() if TIMESTAMP.match(line)]


def test_a_path_with_cr_lf_cannot_forge_a_log_line(api: Api, db: Any, console: io.StringIO) -> None:
    api.anonymous().get("/api/v1/games/%0d%0a" + FORGED.replace(" ", "%20"), HTTP_X_REQUEST_ID="real-1")

    written = console.getvalue()
    assert not any(line.startswith(FORGED[:23]) for line in written.splitlines())
    [line] = [line for line in genuine_records(written) if "questboard.requests" in line]
    assert "[real-1]" in line
    assert "/api/v1/games/\\r\\n" + FORGED in line


def test_a_query_string_or_method_cannot_forge_a_log_line(api: Api, db: Any, console: io.StringIO) -> None:
    client = api.anonymous()
    client.get("/api/v1/games/?q=%0a" + FORGED.replace(" ", "%20"))
    client.generic("GET\n" + FORGED, "/api/v1/games/")

    assert not any(line.startswith(FORGED[:23]) for line in console.getvalue().splitlines())


def test_an_exception_message_cannot_forge_a_log_line_either(console: io.StringIO) -> None:
    log = logging.getLogger("questboard.test")
    try:
        raise ValueError("bad value\r\n" + FORGED)
    except ValueError:
        log.exception("failed on %s", "input\n" + FORGED)

    written = console.getvalue()
    assert not any(line.startswith(FORGED[:23]) for line in written.splitlines())
    [record] = genuine_records(written)
    assert "failed on input\\n" + FORGED in record
    assert "    ValueError: bad value\\r" in written


def test_a_traceback_another_formatter_rendered_first_is_escaped_all_the_same() -> None:
    try:
        raise ValueError("bad value\n" + FORGED)
    except ValueError:
        record = logging.LogRecord("questboard.test", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    logging.Formatter().format(record)  # another handler first: the plain traceback is cached on the record

    written = console_handler().format(record)

    assert not any(line.startswith(FORGED[:23]) for line in written.splitlines())
    assert "    " + FORGED in written.splitlines()
