from __future__ import annotations

from django.apps import AppConfig


class PlayersConfig(AppConfig):
    """The player's site: profiles, dashboards, history, friends, comparison, sharing.

    It reads every domain app and nothing reads it (like analytics)."""

    name = "players"
    default_auto_field = "django.db.models.BigAutoField"
