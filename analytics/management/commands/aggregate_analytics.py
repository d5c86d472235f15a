from __future__ import annotations

import argparse
from datetime import date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from analytics.aggregation import aggregate_day, catch_up, utc_date
from tracker.models import Game


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not a date (YYYY-MM-DD).") from None


class Command(BaseCommand):
    help = (
        "Aggregate developer analytics (docs/analytics.md). Without --day or --since: the periodic "
        "catch-up. With them: rebuild those days (in order, today so far included), cursor untouched."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--game", metavar="SLUG", help="Only this game.")
        days = parser.add_mutually_exclusive_group()
        days.add_argument("--day", type=_day, metavar="YYYY-MM-DD", help="Rebuild this UTC day only.")
        days.add_argument("--since", type=_day, metavar="YYYY-MM-DD", help="Rebuild every day from this one to today.")

    def handle(self, *args: Any, game: str | None, day: date | None, since: date | None, **options: Any) -> None:
        games = list(Game.objects.order_by("slug"))
        if game:
            games = [g for g in games if g.slug == game]
            if not games:
                raise CommandError(f"No game with slug '{game}'.")
        today = utc_date(timezone.now())
        first = day or since
        if first is not None and first > today:
            raise CommandError(f"{first.isoformat()} is in the future (today is {today.isoformat()} UTC).")

        if first is None:
            for slug, count in catch_up(games=games).items():
                self.stdout.write(f"{slug}: {count} day(s) aggregated.")
            return
        last = day or today
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        for target in games:
            for when in days:
                # Distributions are of the current facts: written once, with the last day.
                aggregate_day(game=target, day=when, distributions=when == last)
            self.stdout.write(f"{target.slug}: {len(days)} day(s) rebuilt, {first.isoformat()} to {last.isoformat()}.")
