from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from players.snapshots import take_snapshots


class Command(BaseCommand):
    help = "Write daily snapshots for the last N days (history and trend charts read them)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=1, help="How many days back, today included.")

    def handle(self, *args: Any, days: int, **options: Any) -> None:
        today = timezone.now().date()
        written = sum(take_snapshots(today - timedelta(days=n)) for n in range(days - 1, -1, -1))
        self.stdout.write(f"Wrote {written} snapshots over {days} day(s).")
