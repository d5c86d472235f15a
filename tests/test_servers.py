"""The suite's server subprocesses find the test database by URL (tests/servers.py), whether
its server listens on TCP or, as the embedded PostgreSQL does, on a UNIX socket only."""

from __future__ import annotations

from typing import Any

import dj_database_url
import psycopg
import pytest
from django.conf import settings

from tests.servers import shared_database_url


def served_at(monkeypatch: pytest.MonkeyPatch, **where: Any) -> None:
    db = {**settings.DATABASES["default"], "USER": "postgres", "PASSWORD": "", "PORT": "", **where}
    monkeypatch.setitem(settings.DATABASES, "default", db)


def test_a_socket_directory_is_one_host_for_the_servers_and_for_libpq(monkeypatch: pytest.MonkeyPatch) -> None:
    served_at(monkeypatch, HOST="/tmp/questboard sockets/pg", NAME="test_questboard")

    url = shared_database_url()

    parsed = dj_database_url.parse(url)
    assert (parsed["HOST"], parsed["PORT"], parsed["NAME"], parsed["USER"]) == (
        "/tmp/questboard sockets/pg",
        "",
        "test_questboard",
        "postgres",
    )
    assert psycopg.conninfo.conninfo_to_dict(url)["host"] == "/tmp/questboard sockets/pg"


def test_a_tcp_server_keeps_its_port_and_an_awkward_password(monkeypatch: pytest.MonkeyPatch) -> None:
    served_at(monkeypatch, HOST="127.0.0.1", PORT=5433, PASSWORD="p@ss/w:rd", NAME="test_questboard")

    parsed = dj_database_url.parse(shared_database_url())

    assert (parsed["HOST"], parsed["PORT"], parsed["PASSWORD"]) == ("127.0.0.1", 5433, "p@ss/w:rd")


def test_another_database_on_the_same_server(monkeypatch: pytest.MonkeyPatch) -> None:
    served_at(monkeypatch, HOST="/tmp/pg", NAME="test_questboard")

    parsed = dj_database_url.parse(shared_database_url("test_questboard_bench"))

    assert (parsed["HOST"], parsed["NAME"]) == ("/tmp/pg", "test_questboard_bench")
