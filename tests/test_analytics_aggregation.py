"""The analytics aggregation job (analytics/aggregation.py, docs/analytics.md): every
metric on synthetic play whose answers are known by construction, re-runs that change
nothing, the catch-up after downtime with its cap, late sessions and revocations."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connections
from django.utils import timezone

from achievements.models import Unlock
from achievements.services import revoke_unlock
from analytics import aggregation
from analytics.aggregation import aggregate_day, catch_up
from analytics.models import AchievementDay, ActivityDay, AggregationCursor, Cohort, Distribution, GameDay
from analytics.tasks import aggregate
from infra import periodic
from infra.locks import hold_if_free
from stats.models import PlaySession
from stats.services import record_play_session
from tests.conftest import achievement, make_player
from tests.helpers import give
from tracker.models import Game, Player

DAY = timedelta(days=1)


def at(day: date, hour: int = 10, minute: int = 0, second: int = 0, microsecond: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, second, microsecond), tzinfo=UTC)


def play(player: Player, game: Game, started_at: datetime, ended_at: datetime) -> None:
    record_play_session(
        player=player,
        game=game,
        session_id=f"s-{started_at.timestamp()}",
        started_at=started_at,
        ended_at=ended_at,
        source="server",
    )


def show_up(player: Player, game: Game, day: date, hour: int = 10) -> None:
    """A minute of play: active that day, nothing else."""
    play(player, game, at(day, hour), at(day, hour, 1))


def aggregate_days(game: Game, first: date, last: date) -> None:
    day = first
    while day <= last:
        aggregate_day(game=game, day=day)
        day += DAY


def numbers(game: Game, day: date) -> dict[str, int]:
    row = GameDay.objects.get(game=game, date=day)
    return {
        "dau": row.active_players,
        "new": row.new_players,
        "returning": row.returning_players,
        "wau": row.weekly_active_players,
        "mau": row.monthly_active_players,
        "players": row.players_to_date,
        "unlocks": row.unlocks,
        "playtime": row.playtime_seconds,
    }


def activity(game: Game, day: date) -> dict[str, tuple[int, int, bool]]:
    """username -> (unlocks, playtime, first_day) of the players active that day."""
    return {
        name: (unlocks, playtime, first)
        for name, unlocks, playtime, first in ActivityDay.objects.filter(game=game, date=day).values_list(
            "player__username", "unlocks", "playtime_seconds", "first_day"
        )
    }


def per_achievement(game: Game, day: date) -> dict[str, tuple[int, int]]:
    """api_name -> (unlocks that day, holders at its end)."""
    return {
        name: (unlocks, holders)
        for name, unlocks, holders in AchievementDay.objects.filter(game=game, date=day).values_list(
            "achievement__api_name", "unlocks", "holders"
        )
    }


def cohort(game: Game, day: date) -> tuple[int, int | None, int | None, int | None] | None:
    row = Cohort.objects.filter(game=game, date=day).first()
    return (row.size, row.day1, row.day7, row.day30) if row else None


def distribution(game: Game, kind: str, api_name: str | None = None) -> dict[str, Any]:
    rows = Distribution.objects.filter(game=game, kind=kind)
    rows = rows.filter(achievement__api_name=api_name) if api_name else rows.filter(achievement__isnull=True)
    return rows.get().data


def everything() -> dict[str, list[tuple]]:
    """Every aggregate row, all columns but the row id, for "nothing changed" checks."""
    tables = (ActivityDay, GameDay, AchievementDay, Cohort, Distribution)
    return {
        model.__name__: sorted(
            (tuple(str(v) for v in row.values()) for row in model.objects.values(*fields(model))),
        )
        for model in tables
    }


def fields(model: Any) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields if f.name != "id"]


def reported_long_ago() -> None:
    """Every session so far was reported an hour ago: old news to the next catch-up."""
    PlaySession.objects.update(created=timezone.now() - timedelta(hours=1))


def players(count: int) -> list[Player]:
    return [make_player(f"player{n}") for n in range(1, count + 1)]


@pytest.fixture
def today() -> date:
    return timezone.now().astimezone(UTC).date()


@pytest.fixture
def d0(today: date) -> date:
    """A day far enough back for 30-day retention to have been observed since."""
    return today - timedelta(days=40)


# --- One day's facts ----------------------------------------------------------------------


@pytest.mark.django_db
class TestDayFacts:
    def test_an_empty_game_aggregates_to_zeros_and_empty_distributions(self, game: Game, d0: date) -> None:
        aggregate_day(game=game, day=d0)

        assert numbers(game, d0) == dict.fromkeys(
            ("dau", "new", "returning", "wau", "mau", "players", "unlocks", "playtime"), 0
        )
        assert per_achievement(game, d0) == {
            "FIRST_FLIGHT": (0, 0),
            "ACE_PILOT": (0, 0),
            "SECRET_ENDING": (0, 0),
            "KILL_100": (0, 0),
        }
        assert not ActivityDay.objects.exists()
        assert not Cohort.objects.exists()
        assert distribution(game, "funnel")["players"] == 0
        assert sum(b["players"] for b in distribution(game, "completion")["histogram"]) == 0
        ttu = distribution(game, "time_to_unlock", "ACE_PILOT")
        assert (ttu["samples"], ttu["median"], ttu["p90"], ttu["p10"]) == (0, None, None, None)
        assert Distribution.objects.get(game=game, kind="playtime").as_of == d0

    def test_a_game_with_one_player(self, game: Game, alice: Player, d0: date) -> None:
        play(alice, game, at(d0, 9), at(d0, 10))
        give(alice, achievement(game, "FIRST_FLIGHT"), at=at(d0, 9, 30))

        aggregate_day(game=game, day=d0)

        assert activity(game, d0) == {"alice": (1, 3600, True)}
        assert numbers(game, d0) == {
            "dau": 1,
            "new": 1,
            "returning": 0,
            "wau": 1,
            "mau": 1,
            "players": 1,
            "unlocks": 1,
            "playtime": 3600,
        }
        assert per_achievement(game, d0)["FIRST_FLIGHT"] == (1, 1)
        assert per_achievement(game, d0)["ACE_PILOT"] == (0, 0)
        assert cohort(game, d0) == (1, None, None, None)

    def test_a_session_across_midnight_counts_its_seconds_on_each_day(
        self, game: Game, alice: Player, bob: Player, d0: date
    ) -> None:
        d1 = d0 + DAY
        play(alice, game, at(d0, 22, 30), at(d1, 1, 15))  # 2 h 45 min: 1 h 30 on d0, 1 h 15 on d1
        # 1.7 s played, recorded as 1 s: the 0.5 s before midnight are no whole second.
        play(bob, game, at(d0, 23, 59, 59, 500_000), at(d1, 0, 0, 1, 200_000))

        aggregate_days(game, d0, d1)

        assert activity(game, d0) == {"alice": (0, 5400, True), "bob": (0, 0, True)}
        assert activity(game, d1) == {"alice": (0, 4500, False), "bob": (0, 1, False)}
        assert numbers(game, d0)["playtime"] + numbers(game, d1)["playtime"] == 9900 + 1
        assert (numbers(game, d1)["dau"], numbers(game, d1)["returning"]) == (2, 2)

    def test_a_session_ending_at_midnight_belongs_to_its_day_only(self, game: Game, alice: Player, d0: date) -> None:
        play(alice, game, at(d0, 23), at(d0 + DAY, 0))

        aggregate_days(game, d0, d0 + DAY)

        assert activity(game, d0) == {"alice": (0, 3600, True)}
        assert activity(game, d0 + DAY) == {}

    def test_new_players_are_on_their_first_day_in_the_game_and_the_others_return(
        self, game: Game, alice: Player, bob: Player, charlie: Player, d0: date
    ) -> None:
        d1 = d0 + DAY
        show_up(alice, game, d0)
        show_up(alice, game, d1)
        give(bob, achievement(game, "FIRST_FLIGHT"), at=at(d1, 12))  # an unlock is activity too
        # charlie's first day is d0, by an unlock reported before his session of d1 was.
        show_up(charlie, game, d1)
        give(charlie, achievement(game, "ACE_PILOT"), at=at(d0, 8))

        aggregate_days(game, d0, d1)

        assert activity(game, d1) == {"alice": (0, 60, False), "bob": (1, 0, True), "charlie": (0, 60, False)}
        assert {k: numbers(game, d1)[k] for k in ("dau", "new", "returning", "players")} == {
            "dau": 3,
            "new": 1,
            "returning": 2,
            "players": 3,
        }
        assert cohort(game, d0) == (2, 2, None, None)
        assert cohort(game, d1) == (1, None, None, None)

    def test_players_in_several_games_count_in_each_game_they_played_only(
        self, game: Game, other_game: Game, alice: Player, bob: Player, d0: date
    ) -> None:
        d1 = d0 + DAY
        show_up(alice, game, d0)
        play(alice, game, at(d1, 9), at(d1, 10))
        play(alice, other_game, at(d1, 11), at(d1, 11, 30))
        give(alice, achievement(other_game, "FIRST_ORE"), at=at(d1, 11, 10))
        give(bob, achievement(other_game, "FIRST_ORE"), at=at(d1, 12))

        aggregate_days(game, d0, d1)
        aggregate_days(other_game, d0, d1)

        assert activity(game, d1) == {"alice": (0, 3600, False)}
        assert activity(other_game, d1) == {"alice": (1, 1800, True), "bob": (1, 0, True)}
        assert (numbers(game, d1)["unlocks"], numbers(game, d1)["players"]) == (0, 1)
        assert (numbers(other_game, d1)["unlocks"], numbers(other_game, d1)["new"]) == (2, 2)
        assert per_achievement(other_game, d1) == {"FIRST_ORE": (2, 2)}
        assert numbers(other_game, d0)["players"] == 0

    def test_unlocks_count_on_their_day_and_holders_at_each_days_end(
        self, game: Game, alice: Player, bob: Player, d0: date
    ) -> None:
        d1, d2 = d0 + DAY, d0 + 2 * DAY
        give(alice, achievement(game, "FIRST_FLIGHT"), at=at(d0, 23, 59, 59))
        give(bob, achievement(game, "FIRST_FLIGHT"), at=at(d1, 0))  # the first instant of d1
        give(alice, achievement(game, "ACE_PILOT"), at=at(d1, 15))

        aggregate_days(game, d0, d2)

        assert per_achievement(game, d0)["FIRST_FLIGHT"] == (1, 1)
        assert per_achievement(game, d1)["FIRST_FLIGHT"] == (1, 2)
        assert per_achievement(game, d1)["ACE_PILOT"] == (1, 1)
        assert per_achievement(game, d2) == {
            "FIRST_FLIGHT": (0, 2),
            "ACE_PILOT": (0, 1),
            "SECRET_ENDING": (0, 0),
            "KILL_100": (0, 0),
        }
        assert [numbers(game, d)["unlocks"] for d in (d0, d1, d2)] == [1, 2, 0]

    def test_weekly_and_monthly_actives_are_distinct_players_over_their_windows_even_on_quiet_days(
        self, game: Game, d0: date
    ) -> None:
        p1, p2, p3, p4 = players(4)
        show_up(p1, game, d0)
        show_up(p2, game, d0 + timedelta(days=10))
        show_up(p3, game, d0 + timedelta(days=25))
        show_up(p4, game, d0 + timedelta(days=29))
        show_up(p4, game, d0 + timedelta(days=29), hour=20)  # twice in one day: counted once

        aggregate_days(game, d0, d0 + timedelta(days=30))

        def on(n: int) -> tuple[int, int, int, int]:
            row = numbers(game, d0 + timedelta(days=n))
            return row["dau"], row["wau"], row["mau"], row["players"]

        assert on(0) == (1, 1, 1, 1)
        assert on(6) == (0, 1, 1, 1)  # nobody played: d0 is still in the week
        assert on(7) == (0, 0, 1, 1)  # the week of day 7 is days 1 to 7
        assert on(10) == (1, 1, 2, 2)
        assert on(29) == (1, 2, 4, 4)
        assert on(30) == (0, 2, 3, 4)  # the month of day 30 is days 1 to 30

    def test_cohorts_count_who_came_back_exactly_on_day_1_7_and_30(self, game: Game, d0: date) -> None:
        alice, bob, charlie, dave, erin = players(5)
        for player in (alice, bob, charlie, dave):
            show_up(player, game, d0)
        show_up(erin, game, d0 + DAY)
        for player, back in ((alice, 1), (bob, 1), (charlie, 2), (alice, 7), (dave, 7), (bob, 30), (erin, 8)):
            show_up(player, game, d0 + timedelta(days=back), hour=12)

        aggregate_days(game, d0, d0 + timedelta(days=30))

        assert cohort(game, d0) == (4, 2, 2, 1)
        # erin's day 30 (d0 + 31) has not been aggregated: not observable yet.
        assert cohort(game, d0 + DAY) == (1, 0, 1, None)
        assert cohort(game, d0 + 2 * DAY) is None  # nobody was new that day

    def test_a_retention_day_stays_unknown_until_that_day_is_aggregated(
        self, game: Game, alice: Player, d0: date
    ) -> None:
        show_up(alice, game, d0)
        show_up(alice, game, d0 + DAY)

        aggregate_day(game=game, day=d0)
        assert cohort(game, d0) == (1, None, None, None)

        aggregate_day(game=game, day=d0 + DAY)
        assert cohort(game, d0) == (1, 1, None, None)


# --- Distributions ------------------------------------------------------------------------


@pytest.mark.django_db
class TestDistributions:
    def test_time_to_unlock_has_nearest_rank_percentiles_and_fixed_buckets(self, game: Game, d0: date) -> None:
        ace = achievement(game, "ACE_PILOT")
        # Reported slowest first: the order of the rows is not the order of the times.
        for minutes, player in zip(range(10, 0, -1), players(10), strict=True):
            play(player, game, at(d0, 9), at(d0, 9, 0, 30))  # first activity: 09:00
            give(player, ace, at=at(d0, 9) + timedelta(minutes=minutes))

        aggregate_day(game=game, day=d0)

        data = distribution(game, "time_to_unlock", "ACE_PILOT")
        assert (data["samples"], data["p10"], data["median"], data["p90"]) == (10, 60, 300, 540)
        assert data["histogram"][:4] == [
            {"upto": 60, "count": 1},
            {"upto": 300, "count": 4},  # 2, 3, 4 and 5 minutes: 300 s is in the bucket up to 300
            {"upto": 900, "count": 5},
            {"upto": 1800, "count": 0},
        ]
        assert [b["upto"] for b in data["histogram"]] == list(aggregation.TIME_TO_UNLOCK_BOUNDS)
        assert data["histogram"][-1] == {"upto": None, "count": 0}

    def test_time_to_unlock_counts_from_the_first_activity_and_is_never_negative(
        self, game: Game, alice: Player, bob: Player, charlie: Player, d0: date
    ) -> None:
        first = achievement(game, "FIRST_FLIGHT")
        give(alice, first, at=at(d0, 9))  # her unlock is her first activity: 0 s
        play(bob, game, at(d0, 9), at(d0, 10))
        give(bob, first, at=at(d0, 8))  # unlocked an hour before his recorded first activity
        play(charlie, game, at(d0 - 3 * DAY, 9), at(d0 - 3 * DAY, 10))
        give(charlie, first, at=at(d0, 9))  # three days after his first session began

        aggregate_day(game=game, day=d0)

        data = distribution(game, "time_to_unlock", "FIRST_FLIGHT")
        assert (data["samples"], data["p10"], data["median"], data["p90"]) == (3, 0, 0, 3 * 86400)
        assert data["histogram"][0] == {"upto": 60, "count": 2}
        assert {"upto": 4 * 86400, "count": 1} in data["histogram"]

    @pytest.fixture
    def six_players(self, game: Game, d0: date) -> list[Player]:
        """p1 holds all four; p2 all but The Truth; p3 First Flight and Ace Pilot; p4 First
        Flight; p5 only played; p6 holds only Centurion."""
        p = players(6)
        holdings = {
            0: ("FIRST_FLIGHT", "ACE_PILOT", "KILL_100", "SECRET_ENDING"),
            1: ("FIRST_FLIGHT", "ACE_PILOT", "KILL_100"),
            2: ("FIRST_FLIGHT", "ACE_PILOT"),
            3: ("FIRST_FLIGHT",),
            5: ("KILL_100",),
        }
        for index, names in holdings.items():
            for minutes, name in enumerate(names):
                give(p[index], achievement(game, name), at=at(d0, 12, minutes))
        show_up(p[4], game, d0)
        return p

    def test_the_funnel_orders_by_holders_and_counts_where_players_stop(
        self, game: Game, six_players: list[Player], d0: date
    ) -> None:
        aggregate_day(game=game, day=d0)

        data = distribution(game, "funnel")
        assert data["players"] == 6
        steps = [(s["api_name"], s["reached"], s["stopped_here"]) for s in data["steps"]]
        # Ace Pilot and Centurion are both held by 3: the manifest's order breaks the tie.
        assert steps == [
            ("", 6, 1),
            ("FIRST_FLIGHT", 4, 1),
            ("ACE_PILOT", 3, 1),
            ("KILL_100", 3, 2),
            ("SECRET_ENDING", 1, 1),
        ]
        assert data["steps"][0]["achievement_id"] is None
        assert data["steps"][1]["achievement_id"] == str(achievement(game, "FIRST_FLIGHT").pk)

    def test_the_completion_histogram_has_ten_buckets_the_last_holding_100(
        self, game: Game, six_players: list[Player], d0: date
    ) -> None:
        aggregate_day(game=game, day=d0)

        histogram = distribution(game, "completion")["histogram"]
        assert [(b["from"], b["to"]) for b in histogram] == [(n, n + 10) for n in range(0, 100, 10)]
        # 100 %, 75 %, 50 %, 25 %, 0 % and 25 %.
        assert [b["players"] for b in histogram] == [1, 0, 2, 0, 0, 1, 0, 1, 0, 1]

    def test_the_playtime_histogram_buckets_each_players_total(self, game: Game, d0: date) -> None:
        nobody, quarter, longer, marathon = players(4)
        give(nobody, achievement(game, "FIRST_FLIGHT"), at=at(d0, 8))
        play(quarter, game, at(d0, 9), at(d0, 9, 15))
        play(longer, game, at(d0, 9), at(d0, 9, 15, 1))
        play(marathon, game, at(d0, 1), at(d0, 23))
        play(marathon, game, at(d0 - DAY, 1), at(d0 - DAY, 11))  # 22 h + 10 h

        aggregate_day(game=game, day=d0)

        counts = {b["upto"]: b["players"] for b in distribution(game, "playtime")["histogram"]}
        assert list(counts) == list(aggregation.PLAYTIME_BOUNDS)
        assert {upto: n for upto, n in counts.items() if n} == {0: 1, 900: 1, 1800: 1, 180000: 1}

    def test_rebuilding_an_old_day_leaves_the_latest_distributions_alone(
        self, game: Game, alice: Player, d0: date
    ) -> None:
        give(alice, achievement(game, "FIRST_FLIGHT"), at=at(d0, 8))
        aggregate_day(game=game, day=d0 + DAY)

        aggregate_day(game=game, day=d0)

        assert set(Distribution.objects.values_list("as_of", flat=True)) == {d0 + DAY}


# --- Re-running -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_re_aggregating_days_in_any_order_changes_no_row(game: Game, other_game: Game, d0: date) -> None:
    alice, bob, charlie = players(3)
    for player in (alice, bob):
        play(player, game, at(d0, 22), at(d0 + DAY, 1))
    show_up(charlie, game, d0 + DAY)
    for back in (1, 7, 30):
        show_up(alice, game, d0 + timedelta(days=back), hour=15)
    give(alice, achievement(game, "FIRST_FLIGHT"), at=at(d0, 23))
    give(bob, achievement(game, "ACE_PILOT"), at=at(d0 + 7 * DAY, 9))
    give(charlie, achievement(other_game, "FIRST_ORE"), at=at(d0 + DAY, 9))
    last = d0 + timedelta(days=31)
    aggregate_days(game, d0, last)
    aggregate_days(other_game, d0, last)
    before = everything()

    for day in (d0 + 7 * DAY, d0, last, d0 + 30 * DAY, d0 + DAY):
        aggregate_day(game=game, day=day)
    aggregate_day(game=other_game, day=d0 + DAY)

    assert everything() == before
    # bob's session ran on into day 1, and his unlock on day 7 brought him back.
    assert cohort(game, d0) == (2, 2, 2, 1)


# --- The job: cursor, catch-up, late data -----------------------------------------------------


def aggregated_days(game: Game) -> list[date]:
    return list(GameDay.objects.filter(game=game).order_by("date").values_list("date", flat=True))


def cursor(game: Game) -> date | None:
    return AggregationCursor.objects.get(game=game).last_day


@pytest.mark.django_db
class TestCatchUp:
    def test_a_first_run_aggregates_from_the_first_activity_to_today_as_by_hand(
        self, game: Game, alice: Player, bob: Player, today: date
    ) -> None:
        play(alice, game, at(today - 5 * DAY, 23), at(today - 4 * DAY, 1))
        give(bob, achievement(game, "ACE_PILOT"), at=at(today - 2 * DAY))
        show_up(alice, game, today, hour=0)

        assert catch_up() == {"star-raiders": 6}

        assert aggregated_days(game) == [today - n * DAY for n in range(5, -1, -1)]
        assert cursor(game) == today - DAY  # today is not complete
        assert Distribution.objects.filter(game=game, as_of=today).count() == 7
        by_job = everything()
        GameDay.objects.all().delete()
        aggregate_days(game, today - 5 * DAY, today)
        assert everything() == by_job

    def test_an_empty_game_is_left_alone(self, game: Game) -> None:
        assert catch_up() == {"star-raiders": 0}
        assert not GameDay.objects.exists()
        assert not AggregationCursor.objects.exists()

    def test_after_downtime_every_missing_day_is_filled_and_the_cursor_reaches_yesterday(
        self, game: Game, alice: Player, bob: Player, today: date
    ) -> None:
        for back in (20, 15, 9, 3):
            show_up(alice, game, today - back * DAY)
        give(bob, achievement(game, "FIRST_FLIGHT"), at=at(today - 11 * DAY))
        reported_long_ago()
        catch_up(now=at(today - 12 * DAY, 18))  # the last run before the job went down
        assert cursor(game) == today - 13 * DAY
        assert aggregated_days(game)[-1] == today - 12 * DAY

        assert catch_up() == {"star-raiders": 13}

        assert aggregated_days(game) == [today - n * DAY for n in range(20, -1, -1)]
        assert cursor(game) == today - DAY
        assert numbers(game, today - 11 * DAY)["new"] == 1
        assert numbers(game, today - 3 * DAY)["wau"] == 1
        assert numbers(game, today)["players"] == 2

    def test_a_run_stops_at_the_cap_and_the_next_runs_continue(self, game: Game, alice: Player, today: date) -> None:
        first = today - 100 * DAY
        show_up(alice, game, first)
        show_up(alice, game, today - DAY)
        reported_long_ago()

        assert catch_up(max_days=30) == {"star-raiders": 30}
        assert aggregated_days(game) == [first + n * DAY for n in range(30)]
        assert cursor(game) == first + 29 * DAY
        assert set(Distribution.objects.values_list("as_of", flat=True)) == {first + 29 * DAY}

        assert catch_up(max_days=30) == {"star-raiders": 30}
        assert cursor(game) == first + 59 * DAY

        assert catch_up(max_days=60) == {"star-raiders": 41}  # the last 40 days, then today
        assert aggregated_days(game) == [first + n * DAY for n in range(101)]
        assert cursor(game) == today - DAY
        assert numbers(game, today - DAY)["returning"] == 1

    def test_a_late_session_re_aggregates_its_day_and_every_day_after(
        self, game: Game, alice: Player, bob: Player, today: date
    ) -> None:
        show_up(alice, game, today - 10 * DAY)
        show_up(alice, game, today - DAY)
        reported_long_ago()
        catch_up()
        assert numbers(game, today - 3 * DAY)["dau"] == 0

        # bob's game server reports, today, a session he played three days ago.
        play(bob, game, at(today - 3 * DAY, 20), at(today - 3 * DAY, 21))
        catch_up()

        assert numbers(game, today - 3 * DAY) == {
            "dau": 1,
            "new": 1,
            "returning": 0,
            "wau": 1,
            "mau": 2,
            "players": 2,
            "unlocks": 0,
            "playtime": 3600,
        }
        assert numbers(game, today - DAY)["wau"] == 2
        assert numbers(game, today - 2 * DAY)["players"] == 2
        assert cohort(game, today - 3 * DAY) == (1, 0, None, None)
        assert cursor(game) == today - DAY

    def test_without_late_data_older_days_are_kept_and_only_yesterday_and_today_are_redone(
        self, game: Game, alice: Player, today: date
    ) -> None:
        show_up(alice, game, today - 4 * DAY)
        show_up(alice, game, today - DAY)
        reported_long_ago()
        catch_up()
        GameDay.objects.filter(date__in=[today - 4 * DAY, today - DAY]).update(unlocks=999)

        catch_up()

        assert numbers(game, today - 4 * DAY)["unlocks"] == 999
        assert numbers(game, today - DAY)["unlocks"] == 0

    def test_a_revocation_lowers_holders_from_yesterday_on_and_keeps_older_history(
        self, game: Game, alice: Player, bob: Player, today: date
    ) -> None:
        ace = achievement(game, "ACE_PILOT")
        give(alice, ace, at=at(today - 3 * DAY))
        give(bob, ace, at=at(today - 3 * DAY, 11))
        catch_up()
        assert per_achievement(game, today - DAY)["ACE_PILOT"] == (0, 2)

        revoke_unlock(unlock=Unlock.objects.get(player=bob, achievement=ace), actor=None, reason="Impossible time.")
        catch_up()

        assert per_achievement(game, today - 3 * DAY)["ACE_PILOT"] == (2, 2)  # as it stood then
        assert per_achievement(game, today - DAY)["ACE_PILOT"] == (0, 1)
        assert per_achievement(game, today)["ACE_PILOT"] == (0, 1)
        funnel = distribution(game, "funnel")["steps"]
        assert [(s["api_name"], s["reached"]) for s in funnel][:2] == [("", 2), ("ACE_PILOT", 1)]

    def test_a_game_another_run_is_aggregating_is_skipped(
        self, game: Game, other_game: Game, alice: Player, today: date
    ) -> None:
        show_up(alice, game, today - DAY)
        show_up(alice, other_game, today - DAY)
        other = connections.create_connection("default")
        try:
            with hold_if_free(f"analytics-run:{game.pk}", connection=other) as theirs:
                assert theirs
                assert catch_up() == {"moon-miners": 2}
                assert aggregated_days(game) == []
        finally:
            other.close()
        assert catch_up()["star-raiders"] == 2


@pytest.mark.django_db
def test_the_job_runs_every_ten_minutes_on_celery_beat_and_inline(game: Game, alice: Player, today: date) -> None:
    assert settings.CELERY_BEAT_SCHEDULE["aggregate-analytics"] == {
        "task": "analytics.tasks.aggregate",
        "schedule": 600,
    }
    show_up(alice, game, today - DAY)

    assert aggregate.delay().get() == {"star-raiders": 2}
    periodic.run_inline("analytics.tasks.aggregate")
    assert aggregated_days(game) == [today - DAY, today]


# --- The command ---------------------------------------------------------------------------------


@pytest.mark.django_db
class TestCommand:
    def test_it_rebuilds_one_day_without_moving_the_cursor(self, game: Game, alice: Player, d0: date) -> None:
        show_up(alice, game, d0)
        out = StringIO()

        call_command("aggregate_analytics", "--game", "star-raiders", "--day", d0.isoformat(), stdout=out)

        assert aggregated_days(game) == [d0]
        assert numbers(game, d0)["dau"] == 1
        assert not AggregationCursor.objects.exists()
        assert "star-raiders: 1 day(s) rebuilt" in out.getvalue()

    def test_it_rebuilds_every_day_since_a_date_up_to_today(
        self, game: Game, other_game: Game, alice: Player, today: date
    ) -> None:
        show_up(alice, game, today - 2 * DAY)

        call_command("aggregate_analytics", "--since", (today - 3 * DAY).isoformat(), stdout=StringIO())

        assert aggregated_days(game) == [today - n * DAY for n in range(3, -1, -1)]
        assert aggregated_days(other_game) == aggregated_days(game)
        assert set(Distribution.objects.values_list("as_of", flat=True)) == {today}

    def test_without_a_day_it_runs_the_catch_up(self, game: Game, alice: Player, today: date) -> None:
        show_up(alice, game, today - DAY)
        out = StringIO()

        call_command("aggregate_analytics", stdout=out)

        assert "star-raiders: 2 day(s) aggregated." in out.getvalue()
        assert cursor(game) == today - DAY

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--day", "2026-02-30"], "not a date"),
            (["--since", "yesterday"], "not a date"),
            (["--day", "2999-01-01"], "in the future"),
            (["--game", "no-such-game"], "No game with slug 'no-such-game'"),
            (["--day", "2020-01-01", "--since", "2020-01-01"], "not allowed with argument"),
        ],
    )
    def test_it_refuses_bad_arguments_and_writes_nothing(self, game: Game, args: list[str], message: str) -> None:
        with pytest.raises(CommandError, match=message):
            call_command("aggregate_analytics", *args, stdout=StringIO())
        assert not GameDay.objects.exists()
