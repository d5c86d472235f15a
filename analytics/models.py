"""Developer analytics: daily aggregates per game (to come)."""

from __future__ import annotations
