"""The analytics aggregation job: every aggregate of one game for one UTC day, rewritten whole.

`aggregate_day(game=game, day=day)` recomputes, in one transaction, the rows of that day from the
facts (play sessions, unlocks, per-player stats) and replaces what was there, so running it
again on the same facts writes the same rows. `catch_up()` is the periodic job: it walks
each game's days from its cursor to yesterday, then aggregates today so far.
docs/analytics.md defines every metric; this docstring pins what the rows hold.

Per day (`day` = [00:00, 24:00) UTC):

- ActivityDay, one per player active on the day: a play session with time on the day
  (begun on it, or running at its start), or an unlock on it. `playtime_seconds` is the
  part of the player's sessions on that day; `first_day` is true when the player has no
  session begun and no unlock in the game before the day (their first active day, from the
  facts themselves, so it does not depend on which days were aggregated before).
- GameDay: DAU (ActivityDay rows), new (first_day) and returning (the others), WAU / MAU
  (distinct players with an ActivityDay in the 7 / 30 days ending on the day),
  players_to_date (the sum of cohort sizes up to the day: everyone whose first active day
  came by then), unlocks and playtime of the day.
- AchievementDay, one per achievement of the game: its unlocks on the day, and its holders
  at the day's end (current unlocks with unlocked_at before the day's end).
- Cohort rows of the day, and of the days 1, 7 and 30 before it: size, and how many of the
  cohort were active exactly 1, 7 and 30 days after it; None while that day has not been
  aggregated (no GameDay row yet). A cohort of no players has no row.

Distribution rows (the game's, as of the last aggregated day, from the current facts):

- "time_to_unlock", one per achievement: {"samples": n, "median": s, "p90": s, "p10": s,
  "histogram": [{"upto": s, "count": n}, ...]}. A sample is one current unlock: its
  unlocked_at minus the player's PlayerGameStats.first_activity, in whole seconds (floored,
  never below 0). Percentiles by nearest rank: the p-th is the ceil(p·n/100)-th smallest
  sample; None without samples. A bucket counts samples above the previous `upto` and up to
  its own; the bounds are TIME_TO_UNLOCK_BOUNDS, the last bucket's `upto` is None (longer).
- "completion": {"histogram": [{"from": 0, "to": 10, "players": n}, ... 10 buckets]} over
  every player of the game (PlayerGameStats.completion); a bucket holds from <= c < to,
  the last (90 to 100) includes 100.
- "playtime": {"histogram": [{"upto": s, "players": n}, ...]} of PlayerGameStats.
  playtime_seconds, bounds PLAYTIME_BOUNDS (the first, 0, is players with no playtime
  reported), the last `upto` None.
- "funnel": {"players": n, "steps": [...]}: players = every player of the game; the first
  step {"achievement_id": None, "api_name": "", "reached": n, "stopped_here": players
  with no achievement}, then one step per achievement, most held first (ties: the
  manifest's position, then api_name), "reached" = its holders, "stopped_here" = players
  whose furthest achievement along that order is this one.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import (
    Case,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.functions import RowNumber
from django.utils import timezone

from achievements.models import Achievement, Unlock
from analytics.models import AchievementDay, ActivityDay, AggregationCursor, Cohort, Distribution, GameDay
from infra.locks import hold_if_free, lock_until_commit
from players.snapshots import day_bounds
from stats.models import PlayerGameStats, PlaySession
from stats.services import MAX_SESSION
from tracker.models import Game, Player

log = logging.getLogger("questboard.analytics")

DAY = timedelta(days=1)
WEEK_DAYS = 7
MONTH_DAYS = 30
RETENTION_DAYS = (1, 7, 30)

# Complete days one run aggregates per game at most: a run stays short after downtime and
# the next one (10 minutes later) continues from the cursor.
DAYS_PER_RUN = 60
# A session row's `created` is stamped before its transaction commits, so the run that
# scans at T may not see one stamped just before T: the next run looks back this far
# before its watermark. Seen twice costs a repeat aggregation, never a miss.
LATE_MARGIN = timedelta(minutes=5)

MINUTE, HOUR = 60, 3600
# Upper bounds of the time-to-unlock buckets, roughly log-scale (×2 to ×5), in seconds:
# 1, 5, 15, 30 min; 1, 2, 4, 8 h; 1, 2, 4, 7, 14, 30, 90 days; then longer (None).
TIME_TO_UNLOCK_BOUNDS: tuple[int | None, ...] = (
    *(n * MINUTE for n in (1, 5, 15, 30)),
    *(n * HOUR for n in (1, 2, 4, 8)),
    *(n * 24 * HOUR for n in (1, 2, 4, 7, 14, 30, 90)),
    None,
)
# Upper bounds of the playtime buckets in seconds: none reported; 15, 30 min; 1, 2, 5, 10,
# 20, 50, 100, 200, 500 h; then more (None).
PLAYTIME_BOUNDS: tuple[int | None, ...] = (
    0,
    15 * MINUTE,
    30 * MINUTE,
    *(n * HOUR for n in (1, 2, 5, 10, 20, 50, 100, 200, 500)),
    None,
)
COMPLETION_STEP = 10  # percent per completion bucket
PERCENTILES = {"p10": 10, "median": 50, "p90": 90}
# Player ids per query when asking about many: keeps each statement's parameter list short.
ID_CHUNK = 900


def utc_date(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


# --- One day ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PlayerDay:
    unlocks: int
    playtime_seconds: int
    first_day: bool


def aggregate_day(*, game: Game, day: date, distributions: bool = True) -> GameDay:
    """Recompute and rewrite every aggregate of `game` for the UTC `day`, in one transaction.

    Reads only that day's sessions and unlocks for its facts, earlier ActivityDay rows for
    WAU, MAU and retention, and earlier Cohort rows for players to date, so days are
    aggregated in order (catch_up does). With `distributions`, the game's Distribution rows
    are rewritten as of `day` too, unless they are already as of a later day.
    """
    start, end = day_bounds(day)
    with transaction.atomic():
        _serialise_aggregations(game)
        players = _player_days(game, start, end)
        ActivityDay.objects.filter(game=game, date=day).delete()
        ActivityDay.objects.bulk_create(
            [
                ActivityDay(
                    game=game,
                    player_id=player_id,
                    date=day,
                    unlocks=facts.unlocks,
                    playtime_seconds=facts.playtime_seconds,
                    first_day=facts.first_day,
                )
                for player_id, facts in sorted(players.items())
            ],
            batch_size=2000,
        )
        _write_cohort(game, day)
        game_day = _write_game_day(game, day, players)
        for back in RETENTION_DAYS:
            _write_cohort(game, day - timedelta(days=back))
        _write_achievement_days(game, day, start, end)
        if distributions:
            write_distributions(game=game, as_of=day)
    return game_day


def _serialise_aggregations(game: Game) -> None:
    """Aggregations of one game take turns until commit, so two rewriting the same day (the
    job and a rebuild by hand) cannot interleave their deletes and inserts."""
    lock_until_commit(f"analytics-day:{game.pk}")


def sessions_on(game: Game, start: datetime, end: datetime) -> QuerySet[PlaySession]:
    """Sessions of `game` with time in [start, end): begun in it, or running at its start.
    A session is at most MAX_SESSION long, which bounds the index range on ended_at."""
    return PlaySession.objects.filter(
        game=game, started_at__lt=end, ended_at__gte=start, ended_at__lt=end + MAX_SESSION
    ).filter(Q(started_at__gte=start) | Q(ended_at__gt=start))


def seconds_within(started_at: datetime, duration_seconds: int, start: datetime, end: datetime) -> int:
    """The part of a session in [start, end), in whole seconds. Counted as the session's
    seconds elapsed by `end` minus those elapsed by `start`, so the parts of a session
    across midnight always add up to its duration_seconds."""

    def elapsed(moment: datetime) -> int:
        return min(duration_seconds, max(0, (moment - started_at) // timedelta(seconds=1)))

    return elapsed(end) - elapsed(start)


def _player_days(game: Game, start: datetime, end: datetime) -> dict[Any, PlayerDay]:
    sessions = sessions_on(game, start, end)
    unlocks = Unlock.objects.filter(game=game, unlocked_at__gte=start, unlocked_at__lt=end)

    playtime: dict[Any, int] = defaultdict(int)
    # Sessions inside the day count whole, summed in the database; at most two per player
    # cross a midnight (a player's sessions in a game never overlap), split here.
    inside = sessions.filter(started_at__gte=start, ended_at__lte=end)
    for player_id, seconds in (
        inside.values("player_id").annotate(s=Sum("duration_seconds")).values_list("player_id", "s")
    ):
        playtime[player_id] += seconds or 0
    for player_id, started_at, duration in (
        sessions.filter(Q(started_at__lt=start) | Q(ended_at__gt=end))
        .order_by("pk")
        .values_list("player_id", "started_at", "duration_seconds")
    ):
        playtime[player_id] += seconds_within(started_at, duration, start, end)

    unlocked = dict(unlocks.values("player_id").annotate(n=Count("id")).values_list("player_id", "n"))

    active = set(playtime) | set(unlocked)
    returning = _returning(game, active, start)
    return {
        player_id: PlayerDay(
            unlocks=unlocked.get(player_id, 0),
            playtime_seconds=playtime.get(player_id, 0),
            first_day=player_id not in returning,
        )
        for player_id in active
    }


def _returning(game: Game, player_ids: set[Any], start: datetime) -> set[Any]:
    """Those of `player_ids` with a session begun or an unlock in the game before `start`.
    Asked by id, in chunks: each player's earlier activity is found by its own index, and
    neither the whole player table nor the game's whole history is read."""
    earlier_session = PlaySession.objects.filter(player=OuterRef("pk"), game=game, started_at__lt=start)
    earlier_unlock = Unlock.objects.filter(player=OuterRef("pk"), game=game, unlocked_at__lt=start)
    ids = sorted(player_ids)
    returning: set[Any] = set()
    for offset in range(0, len(ids), ID_CHUNK):
        returning.update(
            Player.objects.filter(pk__in=ids[offset : offset + ID_CHUNK])
            .filter(Exists(earlier_session) | Exists(earlier_unlock))
            .values_list("pk", flat=True)
        )
    return returning


def _distinct_active(game: Game, day: date, days: int) -> int:
    """Players with an ActivityDay in the `days` days ending on `day`."""
    return (
        ActivityDay.objects.filter(game=game, date__gt=day - timedelta(days=days), date__lte=day)
        .values("player_id")
        .distinct()
        .count()
    )


def _write_game_day(game: Game, day: date, players: dict[Any, PlayerDay]) -> GameDay:
    new = sum(facts.first_day for facts in players.values())
    to_date = Cohort.objects.filter(game=game, date__lte=day).aggregate(n=Sum("size"))["n"] or 0
    game_day, _ = GameDay.objects.update_or_create(
        game=game,
        date=day,
        defaults={
            "active_players": len(players),
            "new_players": new,
            "returning_players": len(players) - new,
            "weekly_active_players": _distinct_active(game, day, WEEK_DAYS),
            "monthly_active_players": _distinct_active(game, day, MONTH_DAYS),
            "players_to_date": to_date,
            "unlocks": sum(facts.unlocks for facts in players.values()),
            "playtime_seconds": sum(facts.playtime_seconds for facts in players.values()),
        },
    )
    return game_day


def _write_cohort(game: Game, day: date) -> None:
    """The cohort of players whose first active day was `day`, whole: its size and, for each
    of day 1, 7 and 30 after it that has been aggregated, how many of it were active then.

    One pass over the ActivityDay rows of those (at most four) days, grouped by player: no
    join, so no plan depends on how fresh the table's statistics are."""
    later = {f"day{n}": day + timedelta(days=n) for n in RETENTION_DAYS}
    observed = set(GameDay.objects.filter(game=game, date__in=later.values()).values_list("date", flat=True))
    seen = {name: when for name, when in later.items() if when in observed}

    def active_on(when: date, **more: Any) -> Max:
        return Max(Case(When(date=when, then=Value(1), **more), default=Value(0), output_field=IntegerField()))

    counts = (
        ActivityDay.objects.filter(game=game, date__in=[day, *seen.values()])
        .values("player_id")
        .annotate(member=active_on(day, first_day=True), **{name: active_on(when) for name, when in seen.items()})
        .filter(member=1)
        .aggregate(size=Count("player_id"), **{f"{name}_count": Sum(name) for name in seen})
    )
    if not counts["size"]:
        Cohort.objects.filter(game=game, date=day).delete()
        return
    Cohort.objects.update_or_create(
        game=game,
        date=day,
        defaults={"size": counts["size"], **{name: counts.get(f"{name}_count") for name in later}},
    )


def _write_achievement_days(game: Game, day: date, start: datetime, end: datetime) -> None:
    unlocks = Unlock.objects.filter(game=game)
    on_day = _count_by_achievement(unlocks.filter(unlocked_at__gte=start, unlocked_at__lt=end))
    holders = _count_by_achievement(unlocks.filter(unlocked_at__lt=end))
    AchievementDay.objects.filter(game=game, date=day).delete()
    AchievementDay.objects.bulk_create(
        [
            AchievementDay(
                game=game,
                achievement_id=achievement_id,
                date=day,
                unlocks=on_day.get(achievement_id, 0),
                holders=holders.get(achievement_id, 0),
            )
            for achievement_id in Achievement.objects.filter(game=game).order_by("pk").values_list("pk", flat=True)
        ]
    )


def _count_by_achievement(unlocks: QuerySet[Unlock]) -> dict[Any, int]:
    return dict(unlocks.values("achievement_id").annotate(n=Count("id")).values_list("achievement_id", "n"))


# --- Distributions -----------------------------------------------------------------------


def write_distributions(*, game: Game, as_of: date) -> bool:
    """Rewrite the game's Distribution rows from the current facts, labelled `as_of`; not
    when they are already as of a later day (a rebuild of an old day must not make the
    latest look older). Returns whether they were written."""
    if Distribution.objects.filter(game=game, as_of__gt=as_of).exists():
        return False
    achievements = list(Achievement.objects.filter(game=game).order_by("position", "api_name"))
    rows = [
        Distribution(game=game, kind=Distribution.Kind.TIME_TO_UNLOCK, achievement_id=achievement_id, data=data)
        for achievement_id, data in time_to_unlock(game, [a.pk for a in achievements]).items()
    ]
    rows += [
        Distribution(game=game, kind=Distribution.Kind.COMPLETION, data=completion(game)),
        Distribution(game=game, kind=Distribution.Kind.PLAYTIME, data=playtime(game)),
        Distribution(game=game, kind=Distribution.Kind.FUNNEL, data=funnel(game, achievements)),
    ]
    for row in rows:
        row.as_of = as_of
    Distribution.objects.filter(game=game).delete()
    Distribution.objects.bulk_create(rows)
    return True


def _buckets(bounds: tuple[int | None, ...]) -> Iterator[tuple[int | None, int | None]]:
    """(previous upper bound, upper bound) of each bucket; None below the first, above the last."""
    previous = None
    for bound in bounds:
        yield previous, bound
        previous = bound


def _nearest_rank(percentile: int, samples: int) -> int:
    return max(1, math.ceil(percentile * samples / 100))


def time_to_unlock(game: Game, achievement_ids: list[Any]) -> dict[Any, dict[str, Any]]:
    """The time-to-unlock distribution of each achievement (data of the module docstring)."""
    # A join with the player's stats in the game (not a subquery per use of `took`).
    timed = Unlock.objects.filter(
        game=game, player__game_stats__game=game, player__game_stats__first_activity__isnull=False
    ).annotate(
        took=ExpressionWrapper(F("unlocked_at") - F("player__game_stats__first_activity"), output_field=DurationField())
    )

    # A time in whole seconds is <= b exactly when the exact time is < b + 1 s.
    def within(low: int | None, high: int | None) -> Q:
        condition = Q()
        if low is not None:
            condition &= Q(took__gte=timedelta(seconds=low + 1))
        if high is not None:
            condition &= Q(took__lt=timedelta(seconds=high + 1))
        return condition

    buckets = list(_buckets(TIME_TO_UNLOCK_BOUNDS))
    counts = {
        row["achievement_id"]: row
        for row in timed.values("achievement_id").annotate(
            samples=Count("id"), **{f"b{i}": Count("id", filter=within(*bucket)) for i, bucket in enumerate(buckets)}
        )
    }

    # Only the rows at the nearest ranks of each percentile leave the database.
    ranked = timed.annotate(
        position=Window(RowNumber(), partition_by=[F("achievement_id")], order_by=[F("took").asc(), F("id").asc()]),
        samples=Window(Count("id"), partition_by=[F("achievement_id")]),
    )
    # position = ceil(p·n / 100) <=> (position − 1)·100 < p·n <= position·100
    at_rank = Q()
    for p in PERCENTILES.values():
        at_rank |= Q(upper__gte=F("samples") * p, lower__lt=F("samples") * p)
    picked: dict[Any, dict[str, int]] = defaultdict(dict)
    for achievement_id, position, samples, took in (
        ranked.alias(upper=F("position") * 100, lower=(F("position") - 1) * 100)
        .filter(at_rank)
        .values_list("achievement_id", "position", "samples", "took")
    ):
        for name, p in PERCENTILES.items():
            if _nearest_rank(p, samples) == position:
                picked[achievement_id][name] = max(0, took // timedelta(seconds=1))

    result = {}
    for achievement_id in achievement_ids:
        row = counts.get(achievement_id, {})
        result[achievement_id] = {
            "samples": row.get("samples", 0),
            **{name: picked[achievement_id].get(name) for name in ("median", "p90", "p10")},
            "histogram": [{"upto": high, "count": row.get(f"b{i}", 0)} for i, (_, high) in enumerate(buckets)],
        }
    return result


def completion(game: Game) -> dict[str, Any]:
    stats = PlayerGameStats.objects.filter(game=game)
    last = 100 // COMPLETION_STEP - 1
    edges = [(i * COMPLETION_STEP, (i + 1) * COMPLETION_STEP) for i in range(last + 1)]
    counts = stats.aggregate(
        **{
            f"c{i}": Count("id", filter=Q(completion__gte=low) & (Q() if i == last else Q(completion__lt=high)))
            for i, (low, high) in enumerate(edges)
        }
    )
    return {"histogram": [{"from": low, "to": high, "players": counts[f"c{i}"]} for i, (low, high) in enumerate(edges)]}


def playtime(game: Game) -> dict[str, Any]:
    def within(low: int | None, high: int | None) -> Q:
        condition = Q()
        if low is not None:
            condition &= Q(playtime_seconds__gt=low)
        if high is not None:
            condition &= Q(playtime_seconds__lte=high)
        return condition

    buckets = list(_buckets(PLAYTIME_BOUNDS))
    counts = PlayerGameStats.objects.filter(game=game).aggregate(
        **{f"b{i}": Count("id", filter=within(*bucket)) for i, bucket in enumerate(buckets)}
    )
    return {"histogram": [{"upto": high, "players": counts[f"b{i}"]} for i, (_, high) in enumerate(buckets)]}


def funnel(game: Game, achievements: Iterable[Achievement]) -> dict[str, Any]:
    """Steps in order of how many hold each achievement (most first); each player stops at
    the furthest step they hold, or before the first when they hold none."""
    holders = _count_by_achievement(Unlock.objects.filter(game=game))
    order = sorted(achievements, key=lambda a: (-holders.get(a.pk, 0), a.position, a.api_name))
    players = PlayerGameStats.objects.filter(game=game)
    stops: dict[int | None, int] = {}
    if order:
        step = Case(
            *[When(achievement_id=a.pk, then=Value(i)) for i, a in enumerate(order)], output_field=IntegerField()
        )
        furthest = (
            Unlock.objects.filter(game=game, player=OuterRef("player"))
            .values("player")
            .annotate(step=Max(step))
            .values("step")
        )
        stops = dict(
            players.annotate(furthest=Subquery(furthest, output_field=IntegerField()))
            .values("furthest")
            .annotate(n=Count("id"))
            .values_list("furthest", "n")
        )
    total = players.count()
    return {
        "players": total,
        "steps": [
            {"achievement_id": None, "api_name": "", "reached": total, "stopped_here": stops.get(None, 0)},
            *(
                {
                    "achievement_id": str(a.pk),
                    "api_name": a.api_name,
                    "reached": holders.get(a.pk, 0),
                    "stopped_here": stops.get(i, 0),
                }
                for i, a in enumerate(order)
            ),
        ],
    }


# --- The job -------------------------------------------------------------------------------


def first_active_day(game: Game) -> date | None:
    """The UTC day of the game's earliest session start or unlock; None with neither."""
    moments = [
        Unlock.objects.filter(game=game).aggregate(m=Min("unlocked_at"))["m"],
        PlaySession.objects.filter(game=game).aggregate(m=Min("started_at"))["m"],
    ]
    known = [m for m in moments if m is not None]
    return utc_date(min(known)) if known else None


def first_late_day(game: Game, *, since: datetime) -> date | None:
    """The earliest day with time of a session reported since `since`."""
    started = PlaySession.objects.filter(game=game, created__gte=since).aggregate(m=Min("started_at"))["m"]
    return utc_date(started) if started else None


@contextmanager
def one_run_per_game(game: Game) -> Iterator[bool]:
    """Whether this run has the game to itself: a PostgreSQL session advisory lock, tried
    without waiting, so a second concurrent run skips the game instead of repeating its
    work."""
    with hold_if_free(f"analytics-run:{game.pk}") as mine:
        yield mine


def catch_up(
    now: datetime | None = None, *, games: Iterable[Game] | None = None, max_days: int = DAYS_PER_RUN
) -> dict[str, int]:
    """The periodic job: for each game, aggregate every complete day not yet aggregated
    (after the cursor, or from the game's first active day), advancing the cursor after
    each, then today so far. Returns how many days each game had aggregated.

    Each run also redoes yesterday (a revocation since changes its holders) and, from the
    earliest day a session reported since the last run has time on, every later day (late
    sessions change that day and the WAU, MAU, new players and retention after it), by
    moving the cursor back. At most `max_days` complete days per game and run: a game
    further behind gets the rest next run, and today only once it has caught up.
    """
    today = utc_date(now or timezone.now())
    # The watermark: every session created from here on is new to the next run.
    seen = timezone.now()
    done: dict[str, int] = {}
    for game in games if games is not None else Game.objects.order_by("slug"):
        try:
            with one_run_per_game(game) as mine:
                if not mine:
                    log.info("analytics of %s are being aggregated by another run", game.slug)
                    continue
                done[game.slug] = _catch_up_game(game, today=today, seen=seen, max_days=max_days)
        except Exception:
            log.exception("aggregating the analytics of %s failed", game.slug)
    return done


def _catch_up_game(game: Game, *, today: date, seen: datetime, max_days: int) -> int:
    cursor = AggregationCursor.objects.filter(game=game).first()
    if cursor is None or cursor.last_day is None:
        first = first_active_day(game)
        if first is None:
            return 0
        last_day = first - DAY
    else:
        last_day = cursor.last_day
        late = first_late_day(game, since=cursor.updated - LATE_MARGIN)
        if late is not None and late <= last_day:
            last_day = late - DAY
    # `updated` is the watermark (QuerySet.update leaves auto_now alone): the cursor and
    # what this run has seen move together.
    AggregationCursor.objects.update_or_create(game=game, defaults={"last_day": last_day})
    AggregationCursor.objects.filter(game=game).update(updated=seen)

    yesterday = today - DAY
    start = last_day + DAY
    if start > yesterday and GameDay.objects.filter(game=game, date=yesterday).exists():
        start = yesterday
    days = [start + n * DAY for n in range(max(0, (yesterday - start).days + 1))]
    for day in days[:max_days]:
        with transaction.atomic():
            aggregate_day(game=game, day=day, distributions=False)
            AggregationCursor.objects.filter(game=game).update(last_day=max(day, last_day))
    if len(days) > max_days:
        write_distributions(game=game, as_of=days[max_days - 1])
        return max_days
    aggregate_day(game=game, day=today)
    return len(days) + 1
