from __future__ import annotations

from celery import shared_task
from django.db.models import F

from stats import services
from tracker.models import Game


@shared_task
def refresh_completion(game_id: str) -> None:
    """Every player's completion of a game whose achievement set changed."""
    game = Game.objects.filter(pk=game_id).first()
    if game is not None:
        services.refresh_completion(game=game)


@shared_task
def refresh_stale_completion() -> int:
    """Catch up games whose set changed but whose recompute never ran (a broker outage)."""
    stale = list(Game.objects.exclude(completion_basis=F("achievement_count")).values_list("pk", flat=True))
    for game_id in stale:
        refresh_completion.delay(str(game_id))
    return len(stale)
