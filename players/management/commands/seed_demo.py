"""Demo data through the real service functions: games, seasons, players, friends, play
sessions and 90 days of unlocks, then the background jobs that follow from them."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone

from achievements import rarity
from achievements.models import Source
from achievements.services import UnlockRequest, import_manifest, save_season, unlock_achievement, unlock_achievements
from analytics import review
from analytics.aggregation import catch_up
from analytics.models import UnlockFlag
from leaderboards.services import CLOSE_GRACE, close_due_seasons
from players.services import friend_accept, friend_request
from players.snapshots import take_snapshots
from stats.services import record_play_session
from tracker.models import Game, GameMember, Player, Privacy
from tracker.regions import Region

DEMO_DIR = Path(settings.BASE_DIR) / "demo"
DEMO_PASSWORD = "questboard-demo"
ADMIN_PASSWORD = "questboard-admin"
# The demo studio's developer: makes Star Raiders and Moon Miners, not Dungeon Deep.
STUDIO_USERNAME = "studio"
STUDIO_PASSWORD = "questboard-studio"
STUDIO_GAMES = ("star-raiders", "moon-miners")
SYLLABLES = ["ka", "zu", "mi", "ro", "ne", "tal", "vor", "ix", "sha", "dun", "el", "gri", "pho", "quin", "bo"]


class Command(BaseCommand):
    help = "Load demo games, seasons, players, friends, sessions and unlock histories."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--players", type=int, default=300)
        parser.add_argument("--days", type=int, default=90)
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--if-empty", action="store_true", help="Do nothing if any game exists.")

    def handle(self, *args: Any, players: int, days: int, seed: int, if_empty: bool, **options: Any) -> None:
        if if_empty and Game.objects.exists():
            self.stdout.write("Demo data already present.")
            return
        rng = random.Random(seed)
        now = timezone.now()
        games = [import_manifest(manifest=json.loads(p.read_text())).game for p in sorted(DEMO_DIR.glob("*.json"))]
        self._seasons({g.slug: g for g in games}, now)
        # Members joined before the window their play falls in, up to a year before; drawn
        # from a stream of their own so the rest of the demo stays as the seed makes it.
        joins = random.Random(seed + 1)
        people = [
            self._player(
                "demo", rng, joined=now - timedelta(days=days + 30), privacy=Privacy.PUBLIC, region=Region.EUROPE
            )
        ]
        people += [
            self._player(self._name(rng, i), rng, joined=now - timedelta(days=days + joins.uniform(1, 365)))
            for i in range(players - 1)
        ]
        self._admin()
        self._studio([g for g in games if g.slug in STUDIO_GAMES])
        self._friends(people[0], people[1:], rng)
        unlocks = 0
        for person in people:
            with transaction.atomic():
                for game in rng.sample(games, k=rng.choice([1, 1, 2, 2, 3])):
                    unlocks += self._play(person, game, rng, now, days)
        for game in games:
            rarity.refresh_rarity(game_id=game.pk)
            rarity.refresh_weighted_scores(game_id=game.pk)
        self._rivals(people[0], games, now)
        close_due_seasons(now=now + CLOSE_GRACE)
        today = now.date()
        for back in range(days + 1, -1, -1):
            take_snapshots(today - timedelta(days=back))
        # Every day of the demo's history at once, not DAYS_PER_RUN a run.
        catch_up(max_days=days + 2)
        self.stdout.write(f"Demo data: {len(games)} games, {len(people)} players, {unlocks} unlocks.")
        self._cheaters(next(g for g in games if g.slug == "star-raiders"), rng, timezone.now())
        # Every write of the demo has committed: score it all now rather than a minute on.
        review.score_pending(now=timezone.now() + review.SCORING_DELAY)
        self.stdout.write(f"Review queue: {UnlockFlag.objects.count()} flagged unlocks.")

    def _play(self, player: Player, game: Game, rng: random.Random, now: datetime, days: int) -> int:
        """Sessions of play, each unlocking what the player's skill reaches; times ascend."""
        skill = rng.betavariate(3, 2)
        when = now - timedelta(days=rng.uniform(1, days), minutes=rng.uniform(0, 600))
        count = 0
        for position, achievement in enumerate(game.achievements.order_by("position")):
            chance = skill ** (0.5 + position**1.6 * 0.25) if position else 0.95
            # Reaching each achievement takes a session of play, whether or not this player
            # gets it: later unlocks come no sooner than earned.
            session = timedelta(minutes=rng.uniform(20, 150))
            when += timedelta(hours=rng.expovariate(1 / 30)) + session
            if when >= now:
                break
            record_play_session(
                player=player,
                game=game,
                session_id=f"demo-{position}",
                started_at=when - session,
                ended_at=when,
                source=Source.DEMO,
            )
            if rng.random() > chance:
                continue
            unlock_achievement(player=player, achievement=achievement, source=Source.DEMO, at=when, live=False)
            count += 1
        self._come_back(player, game, rng, when, now)
        return count

    def _cheaters(self, game: Game, rng: random.Random, now: datetime) -> None:
        """Two accounts for the review queue (docs/analytics.md, "Anomaly review"): one whose
        game server reported every achievement at once twenty minutes into the first session
        (a burst, the late ones far too fast), and one whose game client claimed unlocks from
        days before the account existed."""
        began = now - timedelta(hours=3)
        speeder = self._player(
            "w4rp_dr1ve",
            rng,
            joined=began - timedelta(minutes=5),
            privacy=Privacy.PUBLIC,
            region=Region.NORTH_AMERICA,
        )
        record_play_session(
            player=speeder,
            game=game,
            session_id="s1",
            started_at=began,
            ended_at=began + timedelta(minutes=20),
            source=Source.GAME_SERVER,
        )
        unlock_achievements(
            [UnlockRequest(speeder.pk, achievement) for achievement in game.achievements.all()],
            source=Source.GAME_SERVER,
            at=began + timedelta(minutes=20),
            live=False,
        )
        traveller = self._player(
            "chr0n0_trigg3r", rng, joined=now - timedelta(hours=2), privacy=Privacy.PUBLIC, region=Region.EUROPE
        )
        for achievement in game.achievements.filter(client_unlockable=True):
            unlock_achievement(
                player=traveller,
                achievement=achievement,
                source=Source.PLAYER_CLIENT,
                claimed_at=traveller.created - timedelta(days=6),
                at=now - timedelta(hours=1),
                live=False,
            )

    @staticmethod
    def _come_back(player: Player, game: Game, rng: random.Random, when: datetime, now: datetime) -> None:
        """Visits without unlocks after the last one, ever further apart until the player
        drifts away, as real players do: returning players and retention for the analytics."""
        gap_hours = 20.0
        for visit in range(rng.choice([0, 1, 2, 3, 4, 6, 8])):
            session = timedelta(minutes=rng.uniform(15, 90))
            when += timedelta(hours=rng.expovariate(1 / gap_hours)) + session
            if when >= now:
                return
            record_play_session(
                player=player,
                game=game,
                session_id=f"demo-visit-{visit}",
                started_at=when - session,
                ended_at=when,
                source=Source.DEMO,
            )
            gap_hours *= 1.6

    @staticmethod
    def _rivals(demo: Player, games: list[Game], now: datetime) -> None:
        """Today, each of the demo player's friends who is behind in a game they share
        unlocks just enough to pass: rival alerts on the demo dashboard."""
        mine = {s.game_id: s.points for s in demo.game_stats.all()}
        friends = Player.objects.filter(
            friend_requests_received__requester=demo, friend_requests_received__status="accepted"
        )
        for friend in friends:
            theirs = {s.game_id: s.points for s in friend.game_stats.all()}
            passing = (
                achievement
                for game in games
                if game.pk in mine and theirs.get(game.pk, 0) <= mine[game.pk]
                for achievement in game.achievements.exclude(unlocks__player=friend).order_by("-points")
                if theirs.get(game.pk, 0) + achievement.points > mine[game.pk]
            )
            achievement = next(passing, None)
            if achievement is not None:
                unlock_achievement(player=friend, achievement=achievement, source=Source.DEMO, at=now)

    @staticmethod
    def _friends(demo: Player, others: list[Player], rng: random.Random) -> None:
        public = [p for p in others if p.privacy != Privacy.PRIVATE]
        picks = rng.sample(public, k=9)
        for friend in picks[:6]:
            friend_accept(player=friend, friendship=friend_request(sender=demo, receiver=friend))
        for asker in picks[6:8]:
            friend_request(sender=asker, receiver=demo)
        friend_request(sender=demo, receiver=picks[8])

    @staticmethod
    def _seasons(games: dict[str, Game], now: datetime) -> None:
        day = timedelta(days=1)
        save_season(
            game=games["star-raiders"], name="Season 1: Frontier", starts_at=now - 80 * day, ends_at=now - 50 * day
        )
        save_season(
            game=games["star-raiders"], name="Season 2: Nebula Run", starts_at=now - 20 * day, ends_at=now + 10 * day
        )
        save_season(
            game=games["moon-miners"],
            name="Lunar Sprint (Europe)",
            description="Build fast: only habitat, rover and crew achievements count.",
            starts_at=now - 30 * day,
            ends_at=now + 4 * day,
            region=Region.EUROPE,
            achievements=games["moon-miners"].achievements.filter(api_name__in=["HABITAT", "ROVER", "CREW_10"]),
        )
        save_season(
            game=games["dungeon-deep"], name="Deep Dive Weekend", starts_at=now + 3 * day, ends_at=now + 5 * day
        )

    @staticmethod
    def _name(rng: random.Random, index: int) -> str:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()
        return f"{word}{index}" if rng.random() < 0.6 else f"{word}_{rng.randint(1, 99)}x{index}"

    @staticmethod
    def _player(
        username: str,
        rng: random.Random,
        *,
        joined: datetime,
        privacy: str | None = None,
        region: str | None = None,
    ) -> Player:
        regions = [code for code, _ in Region.choices]
        player = Player(
            username=username,
            region=region or rng.choices(regions, weights=[30, 8, 30, 20, 5, 4, 3])[0],
            privacy=privacy or rng.choices([Privacy.PUBLIC, Privacy.FRIENDS, Privacy.PRIVATE], [85, 10, 5])[0],
        )
        player.set_email(f"{username.lower()}@players.questboard.test")
        if username == "demo":
            player.set_password(DEMO_PASSWORD)
        else:
            # Only the demo account logs in; hashing hundreds of passwords would take minutes.
            player.set_unusable_password()
        player.save()
        # `created` is set on insert (auto_now_add): back-date it afterwards.
        Player.objects.filter(pk=player.pk).update(created=joined, date_joined=joined)
        player.created = player.date_joined = joined
        return player

    @staticmethod
    def _studio(games: list[Game]) -> None:
        """A developer account of the demo studio: staff in the "Game developers" group and
        a member of its games, so it reads their analytics and sees only them in the admin."""
        studio = Player.objects.filter(username=STUDIO_USERNAME).first()
        if studio is None:
            studio = Player(username=STUDIO_USERNAME, is_staff=True)
            studio.set_email("studio@questboard.test")
            studio.set_password(STUDIO_PASSWORD)
            studio.save()
        studio.groups.add(Group.objects.get(name="Game developers"))
        for game in games:
            GameMember.objects.get_or_create(game=game, player=studio)

    @staticmethod
    def _admin() -> None:
        if not Player.objects.filter(username="admin").exists():
            admin = Player(username="admin", is_staff=True, is_superuser=True)
            admin.set_email("admin@questboard.test")
            admin.set_password(ADMIN_PASSWORD)
            admin.save()
