"""The unlock's two writers leave identical tables: PostgreSQL's one statement
(achievements/unlock_sql.py) and the portable path SQLite takes. Random batches — repeats,
unknown players, zero-point achievements, regional seasons with chosen achievements, a
closed season — run through each from the same starting point and are compared row by row.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from achievements import services
from achievements.models import Source, Unlock
from achievements.services import UnlockRequest, save_season, unlock_achievements
from leaderboards.models import Season, SeasonStanding
from stats.models import PlayerGameStats, PlayerTotals
from tests.conftest import make_player
from tracker.models import Game, OutboxEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(game: Game, other_game: Game) -> dict[str, Any]:
    now = timezone.now()
    players = [make_player(f"p{i}", region=region) for i, region in enumerate(["eu", "na", "eu", "", "asia"])]
    achievements = list(game.achievements.all()) + list(other_game.achievements.all())
    game.achievements.filter(api_name="ACE_PILOT").update(points=0)
    achievements = [a for a in achievements if a.api_name != "ACE_PILOT"] + [
        game.achievements.get(api_name="ACE_PILOT")
    ]
    save_season(game=game, name="All", starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1))
    save_season(
        game=game,
        name="EU",
        region="eu",
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=1),
        achievements=game.achievements.filter(api_name__in=["FIRST_FLIGHT", "SECRET_ENDING"]),
    )
    save_season(game=game, name="Later", starts_at=now + timedelta(days=1), ends_at=now + timedelta(days=2))
    # Archived while its window still holds the unlocks (no service closes a season so).
    Season.objects.create(
        game=game, name="Closed", starts_at=now - timedelta(days=2), ends_at=now + timedelta(days=2), closed_at=now
    )
    gone = make_player("gone")
    gone.is_active = False
    gone.save()
    return {"players": [*players, gone], "achievements": achievements}


def tables() -> dict[str, list[tuple]]:
    return {
        "unlocks": sorted(
            Unlock.objects.values_list("player_id", "achievement_id", "game_id", "unlocked_at", "source")
        ),
        "games": sorted(
            PlayerGameStats.objects.values_list(
                "player_id",
                "game_id",
                "points",
                "achievement_count",
                "completion",
                "points_reached_at",
                "first_activity",
                "last_activity",
                "playtime_seconds",
            )
        ),
        "totals": sorted(
            PlayerTotals.objects.values_list("player_id", "points", "achievement_count", "points_reached_at")
        ),
        "seasons": sorted(
            SeasonStanding.objects.values_list(
                "season_id", "player_id", "points", "achievement_count", "points_reached_at"
            )
        ),
        "outbox": [_canonical(p) for p in OutboxEvent.objects.order_by("id").values_list("payload", flat=True)],
    }


def _canonical(payload: dict[str, Any]) -> dict[str, Any]:
    return {key: sorted(value) if isinstance(value, list) else value for key, value in payload.items()}


def run(
    batches: list[list[UnlockRequest]], start: datetime, *, one_statement: bool, monkeypatch: pytest.MonkeyPatch
) -> tuple:
    """Apply `batches` one after another with one writer; return what it answered and left."""
    monkeypatch.setattr(services, "writes_in_one_statement", lambda: one_statement)
    answers = []
    with transaction.atomic():
        for step, batch in enumerate(batches):
            outcomes = unlock_achievements(batch, source=Source.GAME_SERVER, at=start + timedelta(seconds=step))
            answers.append([(o.player_id, o.achievement.pk, o.created, o.unlocked_at) if o else None for o in outcomes])
        left = tables()
        transaction.set_rollback(True)
    return answers, left


def test_both_writers_leave_the_same_rows_and_answers(
    world: dict[str, Any], uses_postgres: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not uses_postgres:
        pytest.skip("the one-statement writer is PostgreSQL's")
    rng = random.Random(20261201)
    for _ in range(25):
        batches = [
            [
                UnlockRequest(rng.choice(world["players"]).pk, rng.choice(world["achievements"]))
                for _ in range(rng.randint(1, 8))
            ]
            for _ in range(rng.randint(1, 4))
        ]
        start = timezone.now().replace(microsecond=250_000)
        one = run(batches, start, one_statement=True, monkeypatch=monkeypatch)
        portable = run(batches, start, one_statement=False, monkeypatch=monkeypatch)
        assert one[0] == portable[0]
        for name in one[1]:
            assert one[1][name] == portable[1][name], name
        assert one[1]["unlocks"], "a scenario that unlocked nothing proves nothing"
