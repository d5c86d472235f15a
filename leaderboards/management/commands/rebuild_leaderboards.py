from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from leaderboards import index, sync
from tracker.models import Game


class Command(BaseCommand):
    help = "Rebuild the Redis rank index from PostgreSQL: every board, or one game's boards."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--game", metavar="SLUG", help="Only this game's boards.")

    def handle(self, *args: Any, game: str | None, **options: Any) -> None:
        store = index.redis_store()
        if store is None:
            self.stdout.write("No REDIS_URL: boards are answered from SQL, nothing to rebuild.")
            return
        target = None
        if game:
            target = Game.objects.filter(slug=game).first()
            if target is None:
                raise CommandError(f"No game with slug '{game}'.")
        written = sync.rebuild(store, target)
        self.stdout.write(f"Rebuilt {'boards of ' + target.slug if target else 'every board'}: {written} entries.")
