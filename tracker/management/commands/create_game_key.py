from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tracker.models import Game
from tracker.services import game_key_create


class Command(BaseCommand):
    help = "Create an API key for a game and print the raw key as the last line (only its hash is kept)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--name", default="", help="A label for the key, shown in the admin.")
        parser.add_argument(
            "--requests-per-minute",
            type=int,
            default=None,
            help="This key's rate limit; default: RATE_LIMIT_GAME_KEY (docs/rate-limits.md).",
        )

    def handle(self, *args: Any, slug: str, name: str, requests_per_minute: int | None, **options: Any) -> None:
        game = Game.objects.filter(slug=slug).first()
        if game is None:
            raise CommandError(f"No game with slug '{slug}'.")
        if requests_per_minute is not None and requests_per_minute < 1:
            raise CommandError("--requests-per-minute must be at least 1.")
        raw = game_key_create(game=game, name=name, requests_per_minute=requests_per_minute)
        self.stdout.write(f"API key for {game.slug} (shown once; store it now):")
        self.stdout.write(raw)
