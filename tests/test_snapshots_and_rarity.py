"""Background statistics: daily snapshots (players.snapshots.take_snapshots), the global
unlock percentage and rarity tier (achievements.tasks.refresh_rarity, docs/rarity.md) and
the rarity-weighted score (refresh_weighted_scores)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from achievements.models import Achievement, Source, rarity_tier
from achievements.rarity import score_weight
from achievements.services import UnlockRequest, import_manifest, unlock_achievements
from achievements.tasks import refresh_rarity, refresh_weighted_scores
from players.snapshots import take_snapshots
from stats.models import DailySnapshot, PlayerGameStats, PlayerTotals
from stats.services import record_play_session
from tests.conftest import achievement
from tests.helpers import give
from tracker.models import Game, Player


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


def play(player: Player, game: Game, *, started_at: datetime, ended_at: datetime) -> None:
    record_play_session(
        player=player,
        game=game,
        session_id=f"s-{ended_at.timestamp():.0f}",
        started_at=started_at,
        ended_at=ended_at,
        source="server",
    )


def row(player: Player, day: date, game: Game | None = None) -> tuple[int, ...] | None:
    """(points, achievements, playtime, points_gained, unlocks, playtime_gained) of a snapshot."""
    snap = DailySnapshot.objects.filter(player=player, date=day, game=game).first()
    if snap is None:
        return None
    return (
        snap.points,
        snap.achievement_count,
        snap.playtime_seconds,
        snap.points_gained,
        snap.unlocks,
        snap.playtime_gained,
    )


def all_rows() -> list[tuple[Any, ...]]:
    return sorted(
        DailySnapshot.objects.values_list(
            "player_id",
            "game_id",
            "date",
            "points",
            "achievement_count",
            "playtime_seconds",
            "points_gained",
            "unlocks",
            "playtime_gained",
        ),
        key=str,
    )


# --- Daily snapshots ----------------------------------------------------------------------


@pytest.fixture
def day1() -> date:
    return timezone.now().date() - timedelta(days=10)


@pytest.fixture
def activity(day1: date, alice: Player, bob: Player, charlie: Player, game: Game, other_game: Game) -> None:
    """Day 1: alice First Flight (10) and an hour of play; charlie Ace Pilot (25).
    Day 2, from its first second: alice The Truth (50) and Moon Miners' First Ore (5), half
    an hour of play; bob First Flight (10). Day 4: alice Centurion (15) and 2 h of play.
    Nobody plays on day 3."""
    day2, day4 = day1 + timedelta(days=1), day1 + timedelta(days=3)
    give(alice, achievement(game, "FIRST_FLIGHT"), at=at(day1, 10))
    play(alice, game, started_at=at(day1, 9), ended_at=at(day1, 10))
    give(charlie, achievement(game, "ACE_PILOT"), at=at(day1, 23, 59))
    give(alice, achievement(game, "SECRET_ENDING"), at=at(day2, 0))
    play(alice, game, started_at=at(day2, 8), ended_at=at(day2, 8, 30))
    give(alice, achievement(other_game, "FIRST_ORE"), at=at(day2, 9))
    give(bob, achievement(game, "FIRST_FLIGHT"), at=at(day2, 12))
    give(alice, achievement(game, "KILL_100"), at=at(day4, 10))
    play(alice, game, started_at=at(day4, 11), ended_at=at(day4, 13))


class TestSnapshots:
    def test_a_day_holds_the_totals_at_its_end_not_what_came_later(
        self, activity: None, day1: date, alice: Player, game: Game
    ) -> None:
        take_snapshots(day1)

        # By now alice has 75 points and 3.5 h in Star Raiders; at the end of day 1, 10 and 1 h.
        assert PlayerGameStats.objects.get(player=alice, game=game).points == 75
        assert row(alice, day1, game) == (10, 1, 3600, 10, 1, 3600)
        assert row(alice, day1) == (10, 1, 3600, 10, 1, 3600)

    def test_a_day_counts_only_its_own_gains(
        self, activity: None, day1: date, alice: Player, game: Game, other_game: Game
    ) -> None:
        day2 = day1 + timedelta(days=1)
        take_snapshots(day2)

        assert row(alice, day2, game) == (60, 2, 5400, 50, 1, 1800)
        assert row(alice, day2, other_game) == (5, 1, 0, 5, 1, 0)
        assert row(alice, day2) == (65, 3, 5400, 55, 2, 1800)

    def test_every_player_active_that_day_gets_rows_and_only_they(
        self, activity: None, day1: date, alice: Player, bob: Player, charlie: Player, game: Game
    ) -> None:
        day2 = day1 + timedelta(days=1)
        assert take_snapshots(day1) == 4  # alice and charlie: Star Raiders and overall
        assert take_snapshots(day2) == 5  # alice: two games and overall; bob: one and overall

        assert row(charlie, day1, game) == (25, 1, 0, 25, 1, 0)
        assert row(bob, day1) is None
        assert row(bob, day2) == (10, 1, 0, 10, 1, 0)
        assert row(charlie, day2) is None

    def test_a_day_without_activity_writes_nothing(self, activity: None, day1: date) -> None:
        assert take_snapshots(day1 + timedelta(days=2)) == 0
        assert not DailySnapshot.objects.exists()

    def test_activity_at_midnight_belongs_to_the_day_it_starts(self, activity: None, day1: date, alice: Player) -> None:
        take_snapshots(day1)
        take_snapshots(day1 + timedelta(days=1))
        # The Truth, unlocked at 00:00:00 of day 2, is in day 2's gains, not day 1's totals.
        assert row(alice, day1)[0] == 10
        assert row(alice, day1 + timedelta(days=1))[3] == 55

    def test_later_days_see_the_later_totals(self, activity: None, day1: date, alice: Player, game: Game) -> None:
        day4 = day1 + timedelta(days=3)
        take_snapshots(day4)
        assert row(alice, day4, game) == (75, 3, 12600, 15, 1, 7200)
        assert row(alice, day4) == (80, 4, 12600, 15, 1, 7200)

    def test_taking_a_day_again_changes_nothing(self, activity: None, day1: date) -> None:
        for offset in range(4):
            take_snapshots(day1 + timedelta(days=offset))
        before = all_rows()

        assert take_snapshots(day1) == 4
        assert take_snapshots(day1 + timedelta(days=1)) == 5
        assert all_rows() == before

    def test_retaking_a_day_after_more_activity_still_excludes_it(
        self, activity: None, day1: date, alice: Player, game: Game
    ) -> None:
        take_snapshots(day1)
        give(alice, achievement(game, "ACE_PILOT"))  # today
        play(alice, game, started_at=timezone.now() - timedelta(hours=2), ended_at=timezone.now())

        take_snapshots(day1)

        assert row(alice, day1, game) == (10, 1, 3600, 10, 1, 3600)
        assert row(alice, day1) == (10, 1, 3600, 10, 1, 3600)

    def test_the_command_snapshots_the_last_days(self, alice: Player, bob: Player, game: Game) -> None:
        today = timezone.now().date()
        give(alice, achievement(game, "FIRST_FLIGHT"), at=at(today - timedelta(days=1), 12))
        give(bob, achievement(game, "FIRST_FLIGHT"), at=timezone.now())
        out = StringIO()

        call_command("take_snapshots", "--days", "2", stdout=out)

        assert "Wrote 4 snapshots over 2 day(s)." in out.getvalue()
        assert row(alice, today - timedelta(days=1)) is not None
        assert row(bob, today) is not None
        assert row(alice, today) is None


def test_a_session_reported_days_late_is_added_to_its_days_snapshot(alice: Player, game: Game) -> None:
    from players.tasks import snapshot_yesterday

    three_days_ago = timezone.now().date() - timedelta(days=3)
    give(alice, achievement(game, "ACE_PILOT"), at=at(three_days_ago, 9))
    take_snapshots(three_days_ago)
    assert row(alice, three_days_ago, game) == (25, 1, 0, 25, 1, 0)

    play(alice, game, started_at=at(three_days_ago, 20), ended_at=at(three_days_ago, 21))  # reported now
    snapshot_yesterday()

    assert row(alice, three_days_ago, game) == (25, 1, 3600, 25, 1, 3600)


# --- Rarity -------------------------------------------------------------------------------

# How many of the game's 200 players unlock each achievement, and the tier that makes
# (docs/rarity.md): each threshold exactly, and just under it.
UNLOCKERS = {
    "AT_50": (100, "common"),
    "UNDER_50": (99, "uncommon"),
    "AT_20": (40, "uncommon"),
    "UNDER_20": (39, "rare"),
    "AT_5": (10, "rare"),
    "UNDER_5": (9, "epic"),
    "AT_1": (2, "epic"),
    "UNDER_1": (1, "legendary"),
    "NOBODY": (0, "legendary"),
}
POINTS = {name: 10 * (i + 1) for i, name in enumerate(UNLOCKERS)}
PLAYERS = 200


@pytest.fixture
def rarity_game(db: Any) -> Game:
    achievements = [{"api_name": name, "name": name.title(), "points": POINTS[name]} for name in UNLOCKERS]
    return import_manifest(manifest={"slug": "rarity-game", "name": "Rarity Game", "achievements": achievements}).game


@pytest.fixture
def crowd(rarity_game: Game, other_game: Game) -> list[Player]:
    """200 players with activity in the rarity game, unlocking as UNLOCKERS says; the last
    only played. 30 more players were active only in another game."""
    players = Player.objects.bulk_create([Player(username=f"p{i:03d}", region="eu") for i in range(PLAYERS)])
    elsewhere = Player.objects.bulk_create([Player(username=f"q{i:03d}", region="eu") for i in range(30)])
    # Disjoint enough that every player but the last has an unlock here.
    who = {
        "AT_50": players[0:100],
        "UNDER_50": players[100:199],
        "AT_20": players[0:40],
        "UNDER_20": players[40:79],
        "AT_5": players[0:10],
        "UNDER_5": players[10:19],
        "AT_1": players[0:2],
        "UNDER_1": players[0:1],
        "NOBODY": [],
    }
    requests = [UnlockRequest(p.pk, achievement(rarity_game, name)) for name, group in who.items() for p in group]
    unlock_achievements(requests, source=Source.GAME_SERVER)
    now = timezone.now()
    play(players[-1], rarity_game, started_at=now - timedelta(hours=1), ended_at=now)
    unlock_achievements(
        [UnlockRequest(p.pk, achievement(other_game, "FIRST_ORE")) for p in elsewhere], source=Source.GAME_SERVER
    )
    return players


def game_average_rate() -> float:
    """Unlocks over (achievements × players) in the rarity game, from the table above."""
    return sum(count for count, _ in UNLOCKERS.values()) / len(UNLOCKERS) / PLAYERS


class TestRarity:
    def test_the_unlock_percentage_is_unlockers_over_the_games_active_players(
        self, rarity_game: Game, crowd: list[Player]
    ) -> None:
        refresh_rarity(str(rarity_game.pk))

        found = {a.api_name: (a.unlock_count, a.unlock_percentage) for a in rarity_game.achievements.all()}
        assert found == {name: (count, 100.0 * count / PLAYERS) for name, (count, _) in UNLOCKERS.items()}

    def test_each_tier_starts_at_its_documented_threshold(self, rarity_game: Game, crowd: list[Player]) -> None:
        refresh_rarity(str(rarity_game.pk))

        tiers = {a.api_name: a.rarity for a in rarity_game.achievements.all()}
        assert tiers == {name: tier for name, (_, tier) in UNLOCKERS.items()}

    def test_the_api_shows_the_refreshed_percentage_and_tier(
        self, rarity_game: Game, crowd: list[Player], client: Any
    ) -> None:
        refresh_rarity(str(rarity_game.pk))

        listed = client.get(f"/api/v1/games/{rarity_game.pk}/achievements").json()
        rows = {a["api_name"]: a for a in listed["achievements"]}
        assert (rows["UNDER_20"]["unlock_percentage"], rows["UNDER_20"]["rarity"]) == (19.5, "rare")
        assert (rows["AT_50"]["unlock_percentage"], rows["AT_50"]["rarity"]) == (50.0, "common")

    def test_the_score_weight_follows_score_weight(self, rarity_game: Game, crowd: list[Player]) -> None:
        refresh_rarity(str(rarity_game.pk))

        average = game_average_rate()
        for found in rarity_game.achievements.all():
            count, _ = UNLOCKERS[found.api_name]
            assert found.score_weight == pytest.approx(score_weight(count, PLAYERS, average), abs=1e-4), found
        weights = {a.api_name: a.score_weight for a in rarity_game.achievements.all()}
        # Rarer is worth more.
        assert weights["UNDER_1"] > weights["AT_5"] > weights["AT_20"] > weights["AT_50"] >= 1.0

    def test_a_game_without_players_has_nothing_unlocked(self, rarity_game: Game) -> None:
        refresh_rarity(str(rarity_game.pk))
        assert {(a.unlock_count, a.unlock_percentage, a.rarity) for a in rarity_game.achievements.all()} == {
            (0, 0.0, "legendary")
        }

    def test_an_unlock_refreshes_its_games_rarity_after_commit(
        self, alice: Player, bob: Player, game: Game, django_capture_on_commit_callbacks: Any
    ) -> None:
        give(bob, achievement(game, "ACE_PILOT"))
        with django_capture_on_commit_callbacks(execute=True):
            give(alice, achievement(game, "FIRST_FLIGHT"))

        first_flight = achievement(game, "FIRST_FLIGHT")
        assert (first_flight.unlock_count, first_flight.unlock_percentage, first_flight.rarity) == (1, 50.0, "common")

    @pytest.mark.parametrize(
        ("percentage", "tier"),
        [(100.0, "common"), (50.0, "common"), (49.99, "uncommon"), (20.0, "uncommon"), (19.99, "rare")]
        + [(5.0, "rare"), (4.99, "epic"), (1.0, "epic"), (0.99, "legendary"), (0.0, "legendary")],
    )
    def test_rarity_tier_thresholds(self, percentage: float, tier: str) -> None:
        assert rarity_tier(percentage, unlock_count=1) == tier

    def test_an_achievement_nobody_has_is_legendary_whatever_its_percentage(self) -> None:
        assert rarity_tier(0.0, unlock_count=0) == "legendary"


class TestWeightedScores:
    def test_a_players_weighted_score_is_points_times_weight_over_their_unlocks(
        self, rarity_game: Game, crowd: list[Player]
    ) -> None:
        refresh_rarity(str(rarity_game.pk))
        refresh_weighted_scores(str(rarity_game.pk))

        weights = {a.api_name: (a.points, a.score_weight) for a in rarity_game.achievements.all()}
        first = crowd[0]  # AT_50, AT_20, AT_5, AT_1, UNDER_1
        expected = sum(points * weight for name, (points, weight) in weights.items() if name.startswith("AT_"))
        expected += weights["UNDER_1"][0] * weights["UNDER_1"][1]
        assert PlayerGameStats.objects.get(player=first, game=rarity_game).weighted_score == pytest.approx(expected)
        only_played = crowd[-1]
        assert PlayerGameStats.objects.get(player=only_played, game=rarity_game).weighted_score == 0.0
        # A rare unlock outweighs a common one worth the same points.
        assert expected > sum(points for name, (points, _) in weights.items() if name in {"AT_50", "AT_20", "AT_5"})

    def test_totals_add_up_the_weighted_scores_of_every_game(
        self, rarity_game: Game, other_game: Game, crowd: list[Player]
    ) -> None:
        first = crowd[0]
        give(first, achievement(other_game, "FIRST_ORE"))
        for each in (rarity_game, other_game):
            refresh_rarity(str(each.pk))
            refresh_weighted_scores(str(each.pk))

        per_game = dict(PlayerGameStats.objects.filter(player=first).values_list("game__slug", "weighted_score"))
        assert set(per_game) == {"rarity-game", "moon-miners"}
        assert all(score > 0 for score in per_game.values())
        assert PlayerTotals.objects.get(player=first).weighted_score == pytest.approx(sum(per_game.values()))
        ore = Achievement.objects.get(game=other_game)
        assert per_game["moon-miners"] == pytest.approx(ore.points * ore.score_weight)

    def test_the_dashboard_shows_the_weighted_score(self, rarity_game: Game, crowd: list[Player], client: Any) -> None:
        refresh_rarity(str(rarity_game.pk))
        refresh_weighted_scores(str(rarity_game.pk))

        first = crowd[0]
        body = client.get(f"/api/v1/players/{first.pk}/dashboard").json()
        stored = PlayerTotals.objects.get(player=first).weighted_score
        assert stored > 0
        assert body["weighted_score"] == round(stored, 1)
