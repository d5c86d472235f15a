"""HTTPS only in production, with the health checks a load balancer makes over plain HTTP
still answering, and a Content-Security-Policy on every page."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, override_settings

HTTPS_ONLY = {
    "SECURE_SSL_REDIRECT": True,
    "SESSION_COOKIE_SECURE": True,
    "CSRF_COOKIE_SECURE": True,
    "SECURE_HSTS_SECONDS": 31_536_000,
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
    "SECURE_HSTS_PRELOAD": True,
}


@override_settings(**HTTPS_ONLY)
@pytest.mark.django_db
def test_plain_http_is_sent_to_https_but_health_checks_answer_where_they_are() -> None:
    client = Client()
    page = client.get("/leaderboards/?page=2")
    assert page.status_code == 301
    assert page["Location"] == "https://testserver/leaderboards/?page=2"
    assert client.get("/healthz").status_code == 200


@override_settings(**HTTPS_ONLY)
@pytest.mark.django_db
def test_over_https_browsers_are_told_to_stay_and_cookies_never_travel_in_the_clear() -> None:
    client = Client()
    page = client.get("/accounts/login/", secure=True)
    assert page.status_code == 200
    assert page["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    csrf = page.cookies["csrftoken"]
    assert csrf["secure"] and csrf["samesite"] == "Lax"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/leaderboards/", "/accounts/login/", "/api/docs/", "/admin/login/"])
def test_every_page_forbids_inline_and_foreign_scripts_and_framing(path: str) -> None:
    page = Client().get(path)
    assert page.status_code == 200
    policy = dict(part.strip().split(" ", 1) for part in page["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'"
    assert policy["object-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert b"<script>" not in page.content  # every script is a file of our own


@pytest.mark.django_db
def test_the_api_docs_load_their_setup_as_a_script_file_not_inline(client: Any) -> None:
    page = client.get("/api/docs/")
    setup = client.get("/api/docs/?script")
    assert b'<script src="/api/docs/?script="></script>' in page.content
    assert setup.status_code == 200 and b"SwaggerUIBundle" in setup.content
