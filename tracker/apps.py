from __future__ import annotations

from django.apps import AppConfig


class TrackerConfig(AppConfig):
    name = "tracker"
    verbose_name = "Questboard core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from infra import (
            checks,  # noqa: F401  (registers the start-up checks)
            schema,  # noqa: F401  (registers the API key scheme with drf-spectacular)
        )
