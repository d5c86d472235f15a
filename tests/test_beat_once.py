"""Beat runs once (infra/beat.py): two `celery beat` schedulers started by mistake still
send each periodic job once per period, and a beat that cannot reach Redis sends anyway.

The first test is the real thing: two beat processes and a Celery worker on the test run's
broker (a queue of its own), the test database and Redis, with every interval job due every
PERIOD seconds (tests/beat_settings.py); the beats' and the worker's own log lines say what
was sent and what ran.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from celery.beat import ScheduleEntry
from celery.schedules import crontab, schedule
from django.conf import settings

from config.celery import app as celery_app
from infra import beat
from tests.servers import Background, Server, celery, delete_queue, free_port, running, wait_for

PERIOD = 2  # seconds: every interval job's period in the beat processes
PERIODS = 4  # periods both beats must have decided on, for every job
WAIT_SECONDS = 40.0

INTERVAL_JOBS = {
    name: entry["task"]
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
    if not isinstance(entry["schedule"], crontab)
}
DECISION = re.compile(r"periodic job (?P<job>[\w-]+): slot (?P<slot>\S+) (?P<outcome>sent|skipped)")
SUCCEEDED = re.compile(r"Task (?P<task>[\w.]+)\[[\w-]+\] succeeded")

needs_rabbitmq = pytest.mark.skipif(
    not settings.CELERY_BROKER_URL, reason="needs RabbitMQ (CELERY_BROKER_URL): two real beats and a worker"
)


def decisions(server: Server) -> list[tuple[str, str, str]]:
    """(job, slot, "sent" or "skipped") for every due job a beat process decided on."""
    return [(m["job"], m["slot"], m["outcome"]) for m in DECISION.finditer(server.log.read_text(errors="replace"))]


@pytest.fixture
def queue() -> Iterator[str]:
    """A Celery queue of this test's own, deleted after."""
    name = f"beat-once-{uuid.uuid4().hex[:8]}"
    yield name
    delete_queue(name)


@pytest.mark.django_db(transaction=True)
@needs_rabbitmq
def test_two_beats_send_every_periodic_job_once_per_period_and_the_worker_runs_each_once(
    tmp_path: Path, queue: str
) -> None:
    environment = {
        "DJANGO_SETTINGS_MODULE": "tests.beat_settings",
        "BEAT_TEST_SECONDS": str(PERIOD),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_QUEUE": queue,
    }
    worker = celery(
        "worker",
        "-l",
        "info",
        "-c",
        "2",
        "-n",
        f"{queue}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    )
    processes = {
        "worker": Background(worker, ready=" ready."),
        "beat-a": Background(celery("beat", "-l", "info", "-s", str(tmp_path / "schedule-a")), ready="beat: Starting"),
        "beat-b": Background(celery("beat", "-l", "info", "-s", str(tmp_path / "schedule-b")), ready="beat: Starting"),
    }
    with running({}, tmp_path, environment, background=processes, startup_seconds=WAIT_SECONDS) as started:
        worker_process, *beats = started

        def both_decided_enough() -> bool:
            common = set.intersection(*({(job, slot) for job, slot, _ in decisions(b)} for b in beats))
            per_job = Counter(job for job, _ in common)
            return all(per_job[job] >= PERIODS for job in INTERVAL_JOBS)

        wait_for(
            both_decided_enough,
            f"both beats did not decide {PERIODS} periods of every job",
            started,
            seconds=WAIT_SECONDS,
        )
        for server in beats:
            server.process.terminate()
            server.process.wait(timeout=10)

        decided = [decision for server in beats for decision in decisions(server)]
        sent = Counter((job, slot) for job, slot, outcome in decided if outcome == "sent")
        skipped = Counter(job for job, _, outcome in decided if outcome == "skipped")
        sends_per_job = Counter(job for job, _ in sent.elements())

        def worker_ran_every_send() -> bool:
            ran = Counter(m["task"] for m in SUCCEEDED.finditer(worker_process.log.read_text(errors="replace")))
            return all(ran[task] >= sends_per_job[job] for job, task in INTERVAL_JOBS.items())

        wait_for(
            worker_ran_every_send, "the worker did not run every task sent", [worker_process], seconds=WAIT_SECONDS
        )
        time.sleep(PERIOD)  # anything sent twice would have arrived by now
        ran = Counter(m["task"] for m in SUCCEEDED.finditer(worker_process.log.read_text(errors="replace")))

    assert [slot for slot, count in sent.items() if count > 1] == [], "a period was sent by both beats"
    for job, task in INTERVAL_JOBS.items():
        assert sends_per_job[job] >= PERIODS, f"{job} ran in fewer than {PERIODS} periods"
        assert skipped[job] >= PERIODS, f"the second beat did not compete for every period of {job}"
        assert ran[task] == sends_per_job[job], f"{task}: ran {ran[task]} times for {sends_per_job[job]} periods"


# --- The rules, in one process ---------------------------------------------------------


def entry(name: str = "close-due-seasons", seconds: float = 24 * 3600) -> ScheduleEntry:
    """A schedule entry; daily, so that two calls in a test fall in one period."""
    return ScheduleEntry(
        name=name,
        task="leaderboards.tasks.close_due_seasons",
        schedule=schedule(timedelta(seconds=seconds)),
        app=celery_app,
    )


def scheduler(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch, sent: list[str]
) -> beat.OncePerPeriodScheduler:
    """A scheduler whose sends are recorded instead of published."""
    instance = beat.OncePerPeriodScheduler(app=celery_app, lazy=True, schedule_filename=str(tmp_path / name))
    monkeypatch.setattr(instance, "apply_async", lambda entry, **_: sent.append(f"{name}:{entry.name}"))
    return instance


def test_of_two_schedulers_due_in_the_same_period_only_the_first_sends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []
    first, second = (scheduler(tmp_path, name, monkeypatch, sent) for name in ("a", "b"))

    first.apply_entry(entry())
    second.apply_entry(entry())
    second.apply_entry(entry("snapshot-today"))

    assert sent == ["a:close-due-seasons", "b:snapshot-today"]


def test_a_scheduler_that_cannot_reach_redis_sends_anyway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    sent: list[str] = []

    scheduler(tmp_path, "a", monkeypatch, sent).apply_entry(entry())
    scheduler(tmp_path, "b", monkeypatch, sent).apply_entry(entry())

    assert sent == ["a:close-due-seasons", "b:close-due-seasons"]
    assert "Redis unreachable" in caplog.text


def test_a_failed_send_gives_the_period_back_to_another_scheduler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []
    failing = scheduler(tmp_path, "a", monkeypatch, sent)

    def broker_away(entry: ScheduleEntry, **_: Any) -> None:
        raise ConnectionError("broker away")

    monkeypatch.setattr(failing, "apply_async", broker_away)
    failing.apply_entry(entry())
    scheduler(tmp_path, "b", monkeypatch, sent).apply_entry(entry())

    assert sent == ["b:close-due-seasons"]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_an_interval_period_is_the_same_window_of_the_clock_for_every_scheduler() -> None:
    every = schedule(timedelta(seconds=15))
    slot = beat.slot_of(every, now=at("2026-12-02 06:30:00"))

    assert beat.slot_of(every, now=at("2026-12-02 06:30:14.9")) == slot
    assert beat.slot_of(every, now=at("2026-12-02 06:30:15")) != slot


def test_a_crontab_period_is_its_latest_matching_minute_however_late_a_scheduler_is() -> None:
    nightly = crontab(hour=0, minute=10, app=celery_app)
    on_time = beat.slot_of(nightly, now=at("2026-12-02 00:10:00.3"))
    assert on_time is not None
    label, lasts = on_time

    assert label == "2026-12-02T00:10+0000"
    assert beat.slot_of(nightly, now=at("2026-12-02 00:11:05"))[0] == label  # type: ignore[index]
    assert beat.slot_of(nightly, now=at("2026-12-03 00:10:01"))[0] != label  # type: ignore[index]
    assert lasts == pytest.approx(timedelta(days=1).total_seconds() - 0.3 + beat.CLAIM_MARGIN_SECONDS)
