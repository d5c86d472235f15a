"""A game's analytics for a date range, read from the aggregate tables into one report.

Every number comes from the rows the aggregation job writes (GameDay, AchievementDay,
Cohort, Distribution; analytics/aggregation.py): a report never scans unlocks or play
sessions, and costs the same six queries whatever the range or the size of the game.
The page, the API and the CSV export all render this one report (docs/analytics.md,
"Pages, API and CSV"), so they always agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from achievements.models import Achievement, rarity_tier
from analytics.models import AchievementDay, Cohort, Distribution, GameDay
from infra.numbers import share
from tracker.models import Game

# The widest range a report covers (a leap year), and the default: the 30 days ending today.
MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 30


def today() -> date:
    return timezone.now().date()


def percent(part: int | None, whole: int) -> float | None:
    """`part` of `whole` in percent, to two decimals like every unlock percentage; None
    when there is no part to speak of (not yet observable) or nothing to divide by."""
    if part is None or not whole:
        return None
    return share(part, whole)


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


@dataclass(frozen=True)
class Day:
    """One UTC day of a game. A day without a GameDay row (no activity, or not aggregated
    yet) is all zeros."""

    date: date
    active_players: int  # DAU
    weekly_active_players: int  # WAU: the 7 days ending on `date`
    monthly_active_players: int  # MAU: the 30 days ending on `date`
    stickiness: float | None  # DAU / MAU in percent; None without monthly players
    new_players: int
    returning_players: int
    unlocks: int
    playtime_seconds: int


@dataclass(frozen=True)
class Summary:
    players: int  # everyone ever active in the game, as of the range's end
    new_players: int  # over the range
    average_daily_active: float
    monthly_active_players: int  # on the range's last day
    unlocks: int  # over the range
    playtime_seconds: int  # over the range

    @property
    def playtime_hours(self) -> float:
        return round(self.playtime_seconds / 3600, 1)


@dataclass(frozen=True)
class CohortRetention:
    """The players first active on `date`, and how many came back on day 1, 7 and 30
    after it (None until that day has been aggregated)."""

    date: date
    size: int
    day1: int | None
    day7: int | None
    day30: int | None

    @property
    def day1_percent(self) -> float | None:
        return percent(self.day1, self.size)

    @property
    def day7_percent(self) -> float | None:
        return percent(self.day7, self.size)

    @property
    def day30_percent(self) -> float | None:
        return percent(self.day30, self.size)


@dataclass(frozen=True)
class AchievementStats:
    """One achievement over the range. Percentages are of the game's players to date, as
    they stood at the end of each day; hidden achievements are shown as they are (a
    studio made them)."""

    achievement_id: Any
    api_name: str
    name: str
    hidden: bool
    points: int
    unlocks: int  # unlocks during the range
    holders: int  # players holding it at the range's end
    unlock_percent: float  # global unlock percentage at the range's end
    rarity: str  # achievements.models.rarity_tier of `unlock_percent`
    start_percent: float  # as it stood when the range began (the end of the day before)
    drift: float  # unlock_percent - start_percent, in percentage points
    series: list[float]  # the percentage at the end of each day of the range


@dataclass(frozen=True)
class Bucket:
    upto_seconds: int | None  # None: the open last bucket
    count: int


@dataclass(frozen=True)
class TimeToUnlock:
    """Seconds from a player's first activity in the game to their unlock, over every
    current unlock of the achievement (as of the last aggregated day)."""

    achievement_id: Any
    api_name: str
    name: str
    samples: int
    p10_seconds: int | None
    median_seconds: int | None
    p90_seconds: int | None
    histogram: list[Bucket]


@dataclass(frozen=True)
class FunnelStep:
    """A step of the progression funnel (achievements in order of how common they are;
    the first step, with no achievement, stands for the players holding none)."""

    achievement_id: Any
    api_name: str
    name: str
    reached: int
    reached_percent: float | None
    stopped_here: int
    stopped_percent: float | None


@dataclass(frozen=True)
class Funnel:
    players: int
    steps: list[FunnelStep]


@dataclass(frozen=True)
class CompletionBucket:
    from_percent: float
    to_percent: float
    players: int
    share_percent: float | None


@dataclass(frozen=True)
class PlaytimeBucket:
    upto_seconds: int | None  # None: the open last bucket
    players: int
    share_percent: float | None


@dataclass(frozen=True)
class Report:
    game: Game
    start: date
    end: date
    as_of: date | None  # the last day aggregated (today so far included); None: never aggregated
    summary: Summary
    days: list[Day]
    cohorts: list[CohortRetention]
    achievements: list[AchievementStats]
    time_to_unlock: list[TimeToUnlock]
    funnel: Funnel
    completion: list[CompletionBucket]
    playtime: list[PlaytimeBucket]


def default_range(*, start: date | None = None, end: date | None = None) -> tuple[date, date]:
    """The range a report covers when the caller leaves out an end: it ends today (UTC)
    and spans DEFAULT_RANGE_DAYS days."""
    end = end or today()
    return start or end - timedelta(days=DEFAULT_RANGE_DAYS - 1), end


def game_report(game: Game, *, start: date, end: date) -> Report:
    """The report of `game` for the UTC days [start, end] (validated by the caller:
    start <= end, at most MAX_RANGE_DAYS days)."""
    rows = {row.date: row for row in GameDay.objects.filter(game=game, date__gte=start, date__lte=end)}
    days = _days(rows, start, end)
    players = _players_to_date(game, rows, start, end)
    catalogue = list(
        Achievement.objects.filter(game=game)
        .annotate(
            holders_before=Subquery(
                AchievementDay.objects.filter(achievement=OuterRef("pk"), date__lt=start)
                .order_by("-date")
                .values("holders")[:1]
            )
        )
        .order_by("position", "name")
    )
    distributions = list(Distribution.objects.filter(game=game))
    by_id = {str(a.pk): a for a in catalogue}
    return Report(
        game=game,
        start=start,
        end=end,
        as_of=max((d.as_of for d in distributions), default=None),
        summary=_summary(days, players[end]),
        days=days,
        cohorts=[
            CohortRetention(date=c.date, size=c.size, day1=c.day1, day7=c.day7, day30=c.day30)
            for c in Cohort.objects.filter(game=game, date__gte=start, date__lte=end).order_by("date")
        ],
        achievements=_achievements(game, catalogue, players, start, end),
        time_to_unlock=_time_to_unlock(catalogue, distributions),
        funnel=_funnel(by_id, distributions),
        completion=_completion(distributions),
        playtime=_playtime(distributions),
    )


def _days(rows: dict[date, GameDay], start: date, end: date) -> list[Day]:
    days = []
    for day in days_between(start, end):
        row = rows.get(day) or GameDay(date=day)
        days.append(
            Day(
                date=day,
                active_players=row.active_players,
                weekly_active_players=row.weekly_active_players,
                monthly_active_players=row.monthly_active_players,
                stickiness=percent(row.active_players, row.monthly_active_players),
                new_players=row.new_players,
                returning_players=row.returning_players,
                unlocks=row.unlocks,
                playtime_seconds=row.playtime_seconds,
            )
        )
    return days


def _players_to_date(game: Game, rows: dict[date, GameDay], start: date, end: date) -> dict[date, int]:
    """Everyone ever active in the game, at the end of each day of the range and of the
    day before it. A cumulative count: a day without a row keeps the day before's."""
    before = GameDay.objects.filter(game=game, date__lt=start).order_by("-date")
    current = before.values_list("players_to_date", flat=True).first() or 0
    players = {start - timedelta(days=1): current}
    for day in days_between(start, end):
        current = rows[day].players_to_date if day in rows else current
        players[day] = current
    return players


def _summary(days: list[Day], players: int) -> Summary:
    return Summary(
        players=players,
        new_players=sum(d.new_players for d in days),
        average_daily_active=round(sum(d.active_players for d in days) / len(days), 2),
        monthly_active_players=days[-1].monthly_active_players,
        unlocks=sum(d.unlocks for d in days),
        playtime_seconds=sum(d.playtime_seconds for d in days),
    )


def _achievements(
    game: Game, catalogue: list[Achievement], players: dict[date, int], start: date, end: date
) -> list[AchievementStats]:
    rows: dict[Any, dict[date, tuple[int, int]]] = {}
    for achievement_id, day, unlocks, holders in AchievementDay.objects.filter(
        game=game, date__gte=start, date__lte=end
    ).values_list("achievement_id", "date", "unlocks", "holders"):
        rows.setdefault(achievement_id, {})[day] = (unlocks, holders)
    before = start - timedelta(days=1)
    stats = []
    for achievement in catalogue:
        own = rows.get(achievement.pk, {})
        # Holders change only on a day the job wrote a row for: carry them forward.
        holders = achievement.holders_before or 0
        start_percent = percent(holders, players[before]) or 0.0
        series = []
        for day in days_between(start, end):
            holders = own[day][1] if day in own else holders
            series.append(percent(holders, players[day]) or 0.0)
        unlock_percent = series[-1]
        stats.append(
            AchievementStats(
                achievement_id=achievement.pk,
                api_name=achievement.api_name,
                name=achievement.name,
                hidden=achievement.hidden,
                points=achievement.points,
                unlocks=sum(unlocks for unlocks, _ in own.values()),
                holders=holders,
                unlock_percent=unlock_percent,
                rarity=rarity_tier(unlock_percent, holders),
                start_percent=start_percent,
                drift=round(unlock_percent - start_percent, 2),
                series=series,
            )
        )
    return stats


def _of_kind(distributions: list[Distribution], kind: str) -> dict[str, Any]:
    return next((d.data for d in distributions if d.kind == kind and d.achievement_id is None), {})


def _seconds(value: Any) -> int | None:
    return None if value is None else round(value)


def _time_to_unlock(catalogue: list[Achievement], distributions: list[Distribution]) -> list[TimeToUnlock]:
    by_achievement = {d.achievement_id: d.data for d in distributions if d.kind == Distribution.Kind.TIME_TO_UNLOCK}
    rows = []
    for achievement in catalogue:
        data = by_achievement.get(achievement.pk, {})
        rows.append(
            TimeToUnlock(
                achievement_id=achievement.pk,
                api_name=achievement.api_name,
                name=achievement.name,
                samples=data.get("samples", 0),
                p10_seconds=_seconds(data.get("p10")),
                median_seconds=_seconds(data.get("median")),
                p90_seconds=_seconds(data.get("p90")),
                histogram=[Bucket(_seconds(b.get("upto")), b.get("count", 0)) for b in data.get("histogram", [])],
            )
        )
    return rows


def _funnel(catalogue: dict[str, Achievement], distributions: list[Distribution]) -> Funnel:
    data = _of_kind(distributions, Distribution.Kind.FUNNEL)
    players = data.get("players", 0)
    steps = []
    for step in data.get("steps", []):
        achievement = catalogue.get(str(step.get("achievement_id")))
        api_name = step.get("api_name", "")
        steps.append(
            FunnelStep(
                achievement_id=step.get("achievement_id"),
                api_name=api_name,
                name=achievement.name if achievement else (api_name or "No achievement yet"),
                reached=step.get("reached", 0),
                reached_percent=percent(step.get("reached", 0), players),
                stopped_here=step.get("stopped_here", 0),
                stopped_percent=percent(step.get("stopped_here", 0), players),
            )
        )
    return Funnel(players=players, steps=steps)


def _completion(distributions: list[Distribution]) -> list[CompletionBucket]:
    buckets = _of_kind(distributions, Distribution.Kind.COMPLETION).get("histogram", [])
    total = sum(b.get("players", 0) for b in buckets)
    return [
        CompletionBucket(
            from_percent=b.get("from", 0),
            to_percent=b.get("to", 0),
            players=b.get("players", 0),
            share_percent=percent(b.get("players", 0), total),
        )
        for b in buckets
    ]


def _playtime(distributions: list[Distribution]) -> list[PlaytimeBucket]:
    buckets = _of_kind(distributions, Distribution.Kind.PLAYTIME).get("histogram", [])
    total = sum(b.get("players", 0) for b in buckets)
    return [
        PlaytimeBucket(
            upto_seconds=_seconds(b.get("upto")),
            players=b.get("players", 0),
            share_percent=percent(b.get("players", 0), total),
        )
        for b in buckets
    ]
