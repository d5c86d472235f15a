from __future__ import annotations

from django.apps import AppConfig


class TrackerConfig(AppConfig):
    name = "tracker"
    verbose_name = "Questboard core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from infra import (
            checks,  # noqa: F401  (registers the start-up checks)
            schema,  # noqa: F401  (registers the API key scheme with drf-spectacular)
        )
        from tracker import feedhead
        from tracker.models import Friendship, Game, Player

        # What changes friends' feeds' kept first pages (tracker/feedhead.py).
        post_save.connect(feedhead.player_saved, sender=Player, dispatch_uid="feedhead.player")
        post_save.connect(feedhead.friendship_saved, sender=Friendship, dispatch_uid="feedhead.friendship")
        post_delete.connect(feedhead.friendship_deleted, sender=Friendship, dispatch_uid="feedhead.unfriended")
        for model in (
            Game,
            self.apps.get_model("achievements", "Achievement"),
            self.apps.get_model("leaderboards", "Season"),
        ):
            for signal in (post_save, post_delete):
                signal.connect(
                    feedhead.catalogue_saved, sender=model, dispatch_uid=f"feedhead.{model.__name__}.{signal}"
                )
