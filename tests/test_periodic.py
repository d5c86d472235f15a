"""The periodic jobs run on the embedded default too (`make run` starts `run_periodic`):
seasons close by themselves, snapshots and weighted scores are taken, on the beat schedule."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from achievements.services import save_season
from infra import periodic
from leaderboards.models import Season
from stats.models import DailySnapshot, PlayerGameStats
from tests.conftest import achievement
from tests.helpers import give
from tracker.models import Game, Player


@pytest.mark.django_db
def test_run_periodic_once_closes_due_seasons_and_takes_snapshots_and_scores(alice: Player, game: Game) -> None:
    give(alice, achievement(game, "ACE_PILOT"))
    now = timezone.now()
    season = save_season(
        game=game, name="Winter Cup", starts_at=now - timedelta(days=7), ends_at=now - timedelta(minutes=5)
    )
    out = StringIO()

    call_command("run_periodic", "--once", stdout=out)

    season.refresh_from_db()
    assert season.status == Season.Status.CLOSED
    assert DailySnapshot.objects.filter(player=alice, date=now.date()).exists()
    assert PlayerGameStats.objects.get(player=alice, game=game).weighted_score > 0
    assert "ran close-due-seasons" in out.getvalue()


SCHEDULE = {
    "every-minute": {"task": "leaderboards.tasks.close_due_seasons", "schedule": 60},
    "nightly": {"task": "players.tasks.snapshot_yesterday", "schedule": periodic.crontab(hour=0, minute=10)},
}


def test_interval_jobs_run_at_start_and_again_only_once_their_interval_has_passed() -> None:
    jobs = periodic.jobs(SCHEDULE)
    ran: list[str] = []

    assert periodic.run_due(jobs, ran.append) == ["every-minute"]
    assert periodic.run_due(jobs, ran.append) == []  # a second later: nothing is due
    jobs[0].last_run -= timedelta(seconds=61)
    assert periodic.run_due(jobs, ran.append) == ["every-minute"]
    assert ran == ["leaderboards.tasks.close_due_seasons"] * 2


def test_crontab_jobs_wait_for_their_time_and_a_failing_job_stops_no_other() -> None:
    jobs = periodic.jobs(SCHEDULE)
    nightly = jobs[1]
    assert not nightly.due
    nightly.last_run -= timedelta(days=1, minutes=1)  # the last run was before last night's 00:10

    def run(task: str) -> None:
        raise RuntimeError("database away")

    assert periodic.run_due(jobs, run) == ["every-minute", "nightly"]
    assert not nightly.due


def test_the_runner_follows_the_beat_schedule_itself() -> None:
    jobs = periodic.jobs()
    assert {job.name for job in jobs} == set(settings.CELERY_BEAT_SCHEDULE)
    interval_jobs = {job.name for job in jobs if not isinstance(job.every, periodic.crontab)}
    assert {"close-due-seasons", "snapshot-today", "refresh-all-rarity", "sync-rank-index"} <= interval_jobs
    assert set(periodic.run_due(jobs, lambda task: None)) == interval_jobs
