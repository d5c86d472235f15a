from __future__ import annotations

from datetime import date, timedelta

from celery import shared_task
from django.utils import timezone

from players.snapshots import take_snapshots


@shared_task
def snapshot_day(day: str | None = None) -> int:
    """Snapshot one UTC day (ISO date; default today so far). Rewriting a day is safe."""
    return take_snapshots(date.fromisoformat(day) if day else timezone.now().date())


@shared_task
def snapshot_yesterday() -> int:
    """The final snapshot of the day that just ended."""
    return take_snapshots(timezone.now().date() - timedelta(days=1))
