"""Every environment variable the settings read passes through one of these helpers.

A variable that is not set takes its default. One that is set must hold a value of its
kind, or the app stops at start-up naming the variable, what it holds and what it accepts:
`DEBUG=flase`, `HTTPS_ONLY=` (empty), `DB_POOL_TIMEOUT=5s` and `LOG_LEVEL=verbose` are
mistakes to be told about, never quietly read as something else.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from django.core.exceptions import ImproperlyConfigured
from limits import parse as parse_rate

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def _wrong(name: str, accepted: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{name}={os.environ[name]!r} is not {accepted}.")


def envstr(name: str, default: str = "") -> str:
    """A text setting; set but empty counts as not set."""
    return os.environ.get(name, "").strip() or default


def envbool(name: str, default: bool) -> bool:
    """A yes/no setting: one of the yes or no words, in any case."""
    if name not in os.environ:
        return default
    value = os.environ[name].strip().lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise _wrong(name, f"a yes/no value: use one of {', '.join(TRUE_WORDS)} or {', '.join(FALSE_WORDS)}")


def envint(name: str, default: int, *, minimum: int | None = None) -> int:
    """A whole number, at least `minimum` when one is given."""
    if name not in os.environ:
        return default
    accepted = "a whole number" + (f" of {minimum} or more" if minimum is not None else "")
    try:
        value = int(os.environ[name].strip())
    except ValueError:
        raise _wrong(name, accepted) from None
    if minimum is not None and value < minimum:
        raise _wrong(name, accepted)
    return value


def envfloat(name: str, default: float, *, minimum: float = 0.0) -> float:
    """A number of seconds or the like, at least `minimum` (0 unless given)."""
    if name not in os.environ:
        return default
    accepted = f"a number of {minimum:g} or more"
    try:
        value = float(os.environ[name].strip())
    except ValueError:
        raise _wrong(name, accepted) from None
    if not value >= minimum:  # also refuses nan
        raise _wrong(name, accepted)
    return value


def envchoice(name: str, default: str, choices: Iterable[str]) -> str:
    """One of a fixed set of words (case as given in `choices`)."""
    choices = tuple(choices)
    if name not in os.environ:
        return default
    value = os.environ[name].strip()
    if value not in choices:
        raise _wrong(name, f"one of {', '.join(choices)}")
    return value


def envlist(name: str, default: str = "") -> list[str]:
    """A comma-separated list; empty items are dropped."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def envrate(name: str, default: str) -> str:
    """A rate in the `limits` notation: "100/minute", "10 per hour", "5/30seconds"."""
    if name not in os.environ:
        return default
    value = os.environ[name].strip()
    try:
        item = parse_rate(value)
    except ValueError:
        item = None
    if item is None or item.amount < 1:
        raise _wrong(name, "a rate such as '100/minute'")
    return value
