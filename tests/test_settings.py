"""Settings that must fail loudly, and production defaults that hold: with DEBUG off the app
will not start on the public embedded secret key (from which player tokens' signing key and
the email encryption key derive), and Django's deployment checks find nothing to warn of."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start(*flags: str, **environment: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in ("SECRET_KEY", "DEBUG", "HTTPS_ONLY")}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", **environment)
    return subprocess.run(
        [sys.executable, "manage.py", "check", *flags], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_with_debug_off_the_app_refuses_to_start_without_a_secret_key() -> None:
    started = start()
    assert started.returncode != 0
    assert "SECRET_KEY is not set" in started.stderr


def test_with_debug_off_and_a_secret_key_it_starts() -> None:
    assert start(SECRET_KEY="a-long-random-production-secret").returncode == 0


def test_the_laptop_default_runs_on_the_embedded_key_with_debug_on() -> None:
    assert start(DEBUG="1").returncode == 0


def test_the_production_defaults_pass_every_deployment_check() -> None:
    checked = start("--deploy", "--fail-level", "WARNING", SECRET_KEY="k" * 40 + "a-long-random-production-secret")
    assert checked.returncode == 0, checked.stderr
    assert "no issues" in checked.stdout


def test_a_yes_no_setting_with_an_unexpected_value_stops_the_app_naming_it() -> None:
    started = start(DEBUG="1", HTTPS_ONLY="ture")
    assert started.returncode != 0
    assert "HTTPS_ONLY='ture' is not a yes/no value" in started.stderr


def test_yes_no_settings_take_their_words_in_any_case() -> None:
    assert start(DEBUG="Yes", HTTPS_ONLY="OFF").returncode == 0
