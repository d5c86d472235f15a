"""Settings for the `celery beat` and worker processes of tests/test_beat_once.py: the
app's own, with every interval job of the beat schedule due every BEAT_TEST_SECONDS, so a
few periods pass in seconds. The crontab jobs keep their times (they never come due)."""

from __future__ import annotations

import os

from config.settings import *  # noqa: F403
from config.settings import CELERY_BEAT_SCHEDULE, crontab

BEAT_TEST_SECONDS = float(os.environ["BEAT_TEST_SECONDS"])

CELERY_BEAT_SCHEDULE = {
    name: entry if isinstance(entry["schedule"], crontab) else {**entry, "schedule": BEAT_TEST_SECONDS}
    for name, entry in CELERY_BEAT_SCHEDULE.items()
}
