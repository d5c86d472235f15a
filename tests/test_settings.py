"""Settings that must fail loudly, and production defaults that hold: with a database of its
own and DEBUG off the app will not start without a secret key (from which player tokens'
signing key and the email encryption key derive); every variable is read through one helper
(infra/env.py) that names it and what it accepts; Django's deployment checks and ours find
nothing to warn of in the production defaults, and warn of the unsafe combinations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra import env

ROOT = Path(__file__).resolve().parent.parent


# `check` never connects: any PostgreSQL URL stands for "a database of its own".
OWN_DATABASE = "postgres://postgres@127.0.0.1:5432/questboard"
# Never inherited from the suite's process (an in-process import of config.asgi sets the last two).
UNSET = ("SECRET_KEY", "DEBUG", "HTTPS_ONLY", "DB_POOL_MAX_SIZE", "QUESTBOARD_ASGI")


def start(*flags: str, **environment: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in UNSET}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", DATABASE_URL=OWN_DATABASE)
    env.update(environment)
    return subprocess.run(
        [sys.executable, "manage.py", "check", *flags], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_with_debug_off_the_app_refuses_to_start_without_a_secret_key() -> None:
    started = start()
    assert started.returncode != 0
    assert "SECRET_KEY is not set" in started.stderr


def test_with_debug_off_and_a_secret_key_it_starts() -> None:
    assert start(SECRET_KEY="a-long-random-production-secret").returncode == 0


def test_debug_on_with_a_database_of_its_own_starts_on_the_checkouts_key_and_warns() -> None:
    started = start(DEBUG="1")
    assert started.returncode == 0, started.stderr
    assert "questboard.W003" in started.stderr


def test_the_production_defaults_pass_every_deployment_check() -> None:
    checked = start("--deploy", "--fail-level", "WARNING", SECRET_KEY="k" * 40 + "a-long-random-production-secret")
    assert checked.returncode == 0, checked.stderr
    assert "no issues" in checked.stdout


def test_a_yes_no_setting_with_an_unexpected_value_stops_the_app_naming_it() -> None:
    started = start(DEBUG="1", HTTPS_ONLY="ture")
    assert started.returncode != 0
    assert "HTTPS_ONLY='ture' is not a yes/no value" in started.stderr
    # One line naming the variable, not a traceback.
    assert started.stderr.startswith("questboard: HTTPS_ONLY=")
    assert "Traceback" not in started.stderr


def test_yes_no_settings_take_their_words_in_any_case() -> None:
    assert start(DEBUG="Yes", HTTPS_ONLY="OFF").returncode == 0


@pytest.mark.parametrize(
    ("name", "value", "accepted"),
    [
        ("HTTPS_ONLY", "", "a yes/no value: use one of 1, true, yes, on or 0, false, no, off"),
        ("RATE_LIMIT_REDIS_TIMEOUT_SECONDS", "5s", "a number of 0.01 or more"),
        ("DB_POOL_MAX_SIZE", "ten", "a whole number of 0 or more"),
        ("REDIS_TIMEOUT_SECONDS", "nan", "a number of 0.01 or more"),
        ("DB_CONN_MAX_AGE", "forever", "a whole number of 0 or more"),
        ("RATE_LIMIT_TRUSTED_PROXIES", "-1", "a whole number of 0 or more"),
        ("LOG_LEVEL", "verbose", "one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("OUTBOX_RELAY", "later", "one of process, inline"),
        ("RATE_LIMIT_PLAYER", "lots", "a rate such as '100/minute'"),
    ],
)
def test_a_wrong_value_stops_the_app_naming_the_variable_and_what_it_accepts(
    name: str, value: str, accepted: str
) -> None:
    started = start(SECRET_KEY="a-long-random-production-secret", **{name: value})
    assert started.returncode != 0
    assert started.stderr.strip() == f"questboard: {name}={value!r} is not {accepted}."


def test_a_database_other_than_postgresql_is_refused() -> None:
    started = start(SECRET_KEY="a-long-random-production-secret", DATABASE_URL="sqlite:///questboard.sqlite3")
    assert started.returncode != 0
    assert "DATABASE_URL must name a PostgreSQL database" in started.stderr


def test_an_unset_variable_takes_its_default_and_a_set_one_its_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QB_SETTING", raising=False)
    assert env.envint("QB_SETTING", 7, minimum=0) == 7
    assert env.envfloat("QB_SETTING", 0.5) == 0.5
    assert env.envbool("QB_SETTING", True) is True
    assert env.envchoice("QB_SETTING", "a", ("a", "b")) == "a"
    assert env.envstr("QB_SETTING", "fallback") == "fallback"
    monkeypatch.setenv("QB_SETTING", " 12 ")
    assert env.envint("QB_SETTING", 7, minimum=0) == 12
    assert env.envfloat("QB_SETTING", 0.5) == 12.0
    monkeypatch.setenv("QB_SETTING", "Off")
    assert env.envbool("QB_SETTING", True) is False
    monkeypatch.setenv("QB_SETTING", "")
    assert env.envstr("QB_SETTING", "fallback") == "fallback"


def test_https_off_in_production_is_a_startup_warning() -> None:
    started = start(SECRET_KEY="a-long-random-production-secret", HTTPS_ONLY="0")
    assert started.returncode == 0, started.stderr
    assert "questboard.W002" in started.stderr


def test_an_asgi_server_gets_a_bounded_pool_unless_told_otherwise() -> None:
    script = (
        "import os, json; os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings'; "
        "import config.asgi; from django.conf import settings; "
        "print(json.dumps(settings.DATABASES['default']['OPTIONS'].get('pool')))"
    )
    env = {key: value for key, value in os.environ.items() if key not in UNSET}
    env.update(DATABASE_URL=OWN_DATABASE, SECRET_KEY="a-long-random-production-secret", HTTPS_ONLY="1")

    def pool(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, env={**env, **extra}, capture_output=True, text=True, timeout=120
        )

    default = pool()
    assert default.returncode == 0, default.stderr
    assert json.loads(default.stdout)["max_size"] == 10
    assert "questboard.W001" not in default.stderr

    turned_off = pool(DB_POOL_MAX_SIZE="0")
    assert json.loads(turned_off.stdout) is None
    assert "questboard.W001" in turned_off.stderr
