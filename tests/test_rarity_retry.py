"""A rarity refresh that meets a database error is retried, as the other background tasks
are, so rarity is not left stale until the next full refresh (issue 19). A real Celery
worker on a queue of its own, against the test database; the fault is a table the refresh
reads being away for its first attempt."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from achievements.models import Achievement
from config.celery import app as celery_app
from stats.models import PlayerGameStats
from tests.conftest import achievement, make_player
from tests.helpers import give
from tests.servers import Background, celery, delete_queue, running, wait_for
from tracker.models import Game

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not settings.CELERY_BROKER_URL, reason="needs RabbitMQ (CELERY_BROKER_URL)"),
    # The suite runs tasks inline; send_task says so, and sends to the worker all the same.
    pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored"),
]

WAIT_SECONDS = 60
# What the worker logs once the first attempt has failed: a retry, or (before the fix) the end.
FIRST_ATTEMPT_OVER = re.compile(r"refresh_rarity\[[^\]]+\] (retry:|raised unexpected)")


@pytest.fixture
def queue() -> Iterator[str]:
    name = f"questboard-test-{uuid.uuid4().hex[:12]}"
    yield name
    delete_queue(name)


def rename_table(old: str, new: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE "{old}" RENAME TO "{new}"')


def test_a_rarity_refresh_that_meets_a_database_error_is_retried_and_rarity_ends_right(
    game: Game, queue: str, tmp_path: Path
) -> None:
    alice, bob = make_player("alice"), make_player("bob")
    ace = achievement(game, "ACE_PILOT")
    give(alice, ace)
    give(bob, achievement(game, "FIRST_FLIGHT"))
    Achievement.objects.filter(game=game).update(unlock_count=0, unlock_percentage=0.0)  # stale
    stats = PlayerGameStats._meta.db_table
    away = f"{stats}_away"

    worker = celery("worker", "-l", "info", "--pool", "solo", "-n", f"{queue}@%h", "--without-heartbeat")
    environment = {"CELERY_BROKER_URL": settings.CELERY_BROKER_URL, "CELERY_QUEUE": queue}
    with running({}, tmp_path, environment, background={"worker": Background(worker, ready=" ready.")}) as [started]:
        rename_table(stats, away)
        try:
            celery_app.send_task("achievements.tasks.refresh_rarity", args=[str(game.pk)], queue=queue)
            wait_for(
                lambda: FIRST_ATTEMPT_OVER.search(started.log.read_text(errors="replace")) is not None,
                "the first refresh did not fail",
                [started],
                seconds=WAIT_SECONDS,
            )
        finally:
            rename_table(away, stats)

        def refreshed() -> bool:
            ace.refresh_from_db()
            return ace.unlock_count == 1

        wait_for(refreshed, "rarity was not refreshed after the database came back", [started], seconds=WAIT_SECONDS)

    assert (ace.unlock_count, ace.unlock_percentage) == (1, 50.0)  # alice of alice and bob
    assert "retry: Retry in 1s" in started.log.read_text(errors="replace")
