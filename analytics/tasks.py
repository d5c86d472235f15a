"""Background work of developer analytics: the daily aggregates (analytics/aggregation.py)
and the anomaly scoring of new unlocks (analytics/review.py)."""

from __future__ import annotations

from celery import shared_task

from analytics import review
from analytics.aggregation import catch_up


@shared_task
def aggregate() -> dict[str, int]:
    """Catch every game's aggregates up to today so far (Celery beat, every 10 minutes).
    Returns how many days each game had aggregated."""
    return catch_up()


@shared_task
def score_unlocks() -> int:
    """Score the unlocks recorded since the last run for the review queue (Celery beat,
    every 30 seconds; analytics/review.py). Returns how many it looked at."""
    return review.score_pending()
