"""The OpenAPI schema documents every /api/v1/ endpoint, and the docs page serves it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.drainage import GENERATOR_STATS

from tests.conftest import Api
from tracker.urls import API_ALIASES

SCHEMA_URL = "/api/schema/"


def v1_paths() -> set[str]:
    """Every /api/v1/ route in the URLconf, spelled as OpenAPI spells paths."""

    def walk(patterns: list[Any], prefix: str) -> set[str]:
        found: set[str] = set()
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                found |= walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                found.add("/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route))
        return found

    # Each route also answers with its trailing slash flipped; the schema lists one of the two.
    return {
        path
        for path in walk(get_resolver().url_patterns, "")
        if path.startswith("/api/v1/") and path not in API_ALIASES
    }


def test_the_urlconf_has_the_contract_endpoints() -> None:
    # Guards v1_paths() itself: if it found nothing, the schema test below would prove nothing.
    assert {
        "/api/v1/achievements/unlock",
        "/api/v1/achievements/unlock/batch",
        "/api/v1/achievements/progress",
        "/api/v1/players/",
        "/api/v1/players/{player_id}/achievements",
        "/api/v1/games/{game_id}/achievements",
        "/api/v1/auth/token/",
        "/api/v1/auth/token/refresh/",
    } <= v1_paths()


def test_the_schema_is_an_openapi_3_document_with_every_v1_path(api: Api, db: Any) -> None:
    response = api.anonymous().get(SCHEMA_URL, {"format": "json"})

    assert response.status_code == 200, response.content
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Questboard API"
    assert v1_paths() - set(schema["paths"]) == set()


def test_every_route_also_answers_with_its_trailing_slash_flipped(api: Api, db: Any) -> None:
    assert api.anonymous().get("/api/v1/games").status_code == 200
    assert api.anonymous().get("/api/v1/leaderboards/global/").status_code == 200
    body = {"username": "nova", "email": "nova@example.com", "password": "a long passphrase 42", "region": "eu"}
    assert api.anonymous().post("/api/v1/players", body, format="json").status_code == 201


def test_the_schema_is_served_as_json_for_the_openapi_media_type(api: Api, db: Any) -> None:
    response = api.anonymous().get(SCHEMA_URL, HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    assert "/api/v1/achievements/unlock" in response.json()["paths"]


def test_the_schema_documents_the_unlock_request_and_both_success_statuses(api: Api, db: Any) -> None:
    schema = api.anonymous().get(SCHEMA_URL, {"format": "json"}).json()

    unlock = schema["paths"]["/api/v1/achievements/unlock"]["post"]
    assert {"200", "201"} <= set(unlock["responses"])
    assert "requestBody" in unlock


def test_the_docs_page_is_html(api: Api, db: Any) -> None:
    response = api.anonymous().get("/api/docs/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "swagger" in page.lower()
    # Its setup is a script file of its own (the Content-Security-Policy allows no inline
    # script), which points Swagger UI at the schema.
    setup = api.anonymous().get("/api/docs/?script=")
    assert setup["Content-Type"].startswith("application/javascript")
    assert SCHEMA_URL in setup.content.decode()


def test_the_schema_generates_without_warnings_and_validates(db: Any, tmp_path: Path, capsys: Any) -> None:
    target = tmp_path / "schema.yml"
    GENERATOR_STATS.reset()  # warnings are remembered process-wide; count only this run's

    try:
        call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    finally:
        warnings = capsys.readouterr().err

    assert "Warning" not in warnings, warnings
    assert yaml.safe_load(target.read_text())["openapi"].startswith("3.")
