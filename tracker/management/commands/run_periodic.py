from __future__ import annotations

import signal
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from infra import periodic


class Command(BaseCommand):
    help = (
        "Run the periodic jobs (season close, snapshots, rarity, index repair) on their "
        "schedule in this process, each inline: for the embedded default, where no Celery "
        "beat runs (`make run` starts it). Production runs `celery beat` instead."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Run every job once now, then exit.")
        parser.add_argument("--tick", type=float, default=1.0, help="Seconds between looks at the schedule.")

    def handle(self, *args: Any, once: bool, tick: float, **options: Any) -> None:
        scheduled = periodic.jobs()
        if once:
            for job in scheduled:
                periodic.run_inline(job.task)
                self.stdout.write(f"ran {job.name}")
            return
        stopping: list[bool] = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
        self.stdout.write(f"running {len(scheduled)} periodic jobs inline; Ctrl-C stops")
        while not stopping:
            periodic.run_due(scheduled, periodic.run_inline)
            close_old_connections()  # as after a request: none outlives CONN_MAX_AGE or an error
            time.sleep(tick)
