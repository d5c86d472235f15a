"""The periodic jobs without Celery beat: the embedded default (`make run`) runs the same
schedule (settings.CELERY_BEAT_SCHEDULE) in a process of its own, each job inline.

Production runs `celery beat` instead; this is for a laptop with no broker, where seasons
must still close, snapshots and rarity still refresh. Interval jobs run once at start and
then every interval; crontab jobs at their next matching minute.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery.schedules import crontab, schedule
from django.conf import settings
from django.utils.module_loading import import_string

log = logging.getLogger("questboard.periodic")


@dataclass
class Job:
    name: str
    task: str
    every: schedule  # celery's interval schedule or crontab, asked "is it due?" on the clock
    last_run: datetime

    @property
    def due(self) -> bool:
        return bool(self.every.is_due(self.last_run).is_due)


def jobs(beat_schedule: dict[str, dict[str, Any]] | None = None) -> list[Job]:
    """The beat schedule as jobs: interval ones due at once, crontab ones at their next
    matching time."""
    from config.celery import app

    now = app.now()
    found = []
    for name, entry in (settings.CELERY_BEAT_SCHEDULE if beat_schedule is None else beat_schedule).items():
        every = entry["schedule"]
        if isinstance(every, crontab):
            found.append(Job(name, entry["task"], every, last_run=now))
        else:
            interval = every if isinstance(every, timedelta) else timedelta(seconds=every)
            found.append(Job(name, entry["task"], schedule(interval, app=app), last_run=now - interval))
    return found


def run_due(scheduled: list[Job], run: Callable[[str], None]) -> list[str]:
    """Run every job that is due now; a failure is logged and never stops the others.
    Returns the names of the jobs run."""
    from config.celery import app

    ran = []
    for job in scheduled:
        if job.due:
            job.last_run = app.now()
            try:
                run(job.task)
            except Exception:
                log.exception("periodic job %s failed", job.name)
            ran.append(job.name)
    return ran


def run_inline(task_name: str) -> None:
    """Run one task here and now, its subtasks too (Celery's eager mode)."""
    result = import_string(task_name).apply(throw=True)
    log.info("periodic job %s done: %s", task_name, result.result)
