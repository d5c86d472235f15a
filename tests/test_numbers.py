"""infra/numbers.py: every percentage and every length of time the site shows, one rule each,
so the anomaly review queue, the analytics tables and the player pages agree."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings

from achievements.models import Source
from analytics import review, tables
from infra.numbers import duration, hours, percent, share


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (4.5, "4.5 s"),
        (45, "45 s"),
        (59.7, "1 min"),
        (12 * 60, "12 min"),
        (2 * 3600, "2 h"),
        (3 * 3600 + 5 * 60, "3 h 05 min"),
        (47 * 3600 + 59 * 60, "47 h 59 min"),
        (48 * 3600, "2 days"),
        (60 * 3600, "2.5 days"),
        (10 * 86400, "10 days"),
        (-5, "0 s"),
    ],
)
def test_a_duration_reads_as_people_say_it(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_the_review_queue_and_the_analytics_tables_write_the_same_span_alike() -> None:
    span = timedelta(hours=60)
    account_created = datetime(2025, 3, 10, tzinfo=UTC)
    unlock = review.UnlockFacts(
        id=1,
        player_id=uuid.uuid4(),
        game_id=uuid.uuid4(),
        achievement_id=uuid.uuid4(),
        unlocked_at=account_created + timedelta(days=1),
        claimed_at=account_created - span,
        source=Source.PLAYER_CLIENT,
        account_created=account_created,
        achievement_created=account_created - timedelta(days=400),
    )
    game = review.GameFacts(players=0, percentages={}, common=frozenset(), time_to_unlock={})
    player = review.PlayerFacts(first_activity=None, first_unlocked_at=None)

    with override_settings(UNLOCK_MAX_CLOCK_SKEW=timedelta(minutes=5)):
        [evidence] = review.evidence_for(unlock, player, game)

    in_table = tables.display(int(span.total_seconds()), "seconds")
    assert in_table == "2.5 days"
    assert f"{in_table} before the player's account was created" in evidence["detail"]


@pytest.mark.parametrize(
    ("part", "whole", "places", "value"),
    [(1, 3, 2, 33.33), (2, 3, 2, 66.67), (2, 3, 1, 66.7), (5, 5, 2, 100.0), (3, 0, 2, 0.0), (0, 7, 2, 0.0)],
)
def test_a_share_is_a_percentage_rounded_once(part: int, whole: int, places: int, value: float) -> None:
    assert share(part, whole, places=places) == value


@pytest.mark.parametrize(
    ("value", "text"), [(None, "–"), (0, "0.0%"), (0.01, "<0.1%"), (0.05, "0.1%"), (66.666, "66.7%"), (100, "100.0%")]
)
def test_a_percentage_is_written_with_one_decimal(value: float | None, text: str) -> None:
    assert percent(value) == text


def test_playtime_reads_in_hours() -> None:
    assert hours(5400) == "1.5 h"
    assert hours(36000) == "10 h"
