from __future__ import annotations

from datetime import date, timedelta

from celery import shared_task
from django.utils import timezone

from players.snapshots import take_snapshots
from stats.models import PlaySession


@shared_task
def snapshot_day(day: str | None = None) -> int:
    """Snapshot one UTC day (ISO date; default today so far). Rewriting a day is safe."""
    return take_snapshots(date.fromisoformat(day) if day else timezone.now().date())


@shared_task
def snapshot_yesterday() -> int:
    """The final snapshot of the day that just ended, and again of any earlier day that a
    play session reported late (since the last run) belongs to."""
    now = timezone.now()
    yesterday = now.date() - timedelta(days=1)
    late_days = (
        PlaySession.objects.filter(created__gte=now - timedelta(days=1, hours=1), ended_at__date__lt=yesterday)
        .dates("ended_at", "day")
        .distinct()
    )
    return sum(take_snapshots(day) for day in [*late_days, yesterday])
