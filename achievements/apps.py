from __future__ import annotations

from django.apps import AppConfig


class AchievementsConfig(AppConfig):
    name = "achievements"
    default_auto_field = "django.db.models.BigAutoField"
