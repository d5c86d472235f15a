"""The report's tables, as the page shows them and the CSV exports hold them: one
definition per table, so the two always carry the same numbers.

A cell is a raw value (what the CSV holds, and the page in each cell's `data-value`) and
its text on the page (`display`): durations in seconds read as "2 h 05 min" there.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from analytics.selectors import Report
from infra.numbers import duration, hours, percent

NUMERIC = {"count", "percent", "drift", "seconds", "hours"}


@dataclass(frozen=True)
class Column:
    key: str  # the CSV header
    label: str  # the page's column heading
    # count, percent, drift (percentage points), seconds (shown as a duration), hours
    # (seconds shown in hours), date, text, flag, rarity
    unit: str = "count"

    @property
    def numeric(self) -> bool:
        return self.unit in NUMERIC


@dataclass(frozen=True)
class Cell:
    raw: str  # as in the CSV
    text: str  # as shown on the page
    column: Column


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    columns: list[Column]
    rows: list[list[Any]]

    def cells(self) -> list[list[Cell]]:
        """Each row's cells, for the page."""
        return [
            [
                Cell(raw(value), display(value, column.unit), column)
                for value, column in zip(row, self.columns, strict=True)
            ]
            for row in self.rows
        ]


def raw(value: Any) -> str:
    """A value as the CSV writes it: empty for none, ISO dates, true/false."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def display(value: Any, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "percent":
        return percent(value)
    if unit == "drift":
        return f"{value:+g} pts"
    if unit == "seconds":
        return duration(value)
    if unit == "hours":
        return hours(value)
    if unit == "flag":
        return "yes" if value else "no"
    return raw(value)


def _daily(report: Report) -> Table:
    return Table(
        "daily",
        "Players and unlocks per day",
        [
            Column("date", "Date", "date"),
            Column("active_players", "Active (DAU)"),
            Column("weekly_active_players", "WAU"),
            Column("monthly_active_players", "MAU"),
            Column("stickiness_percent", "Stickiness (DAU/MAU)", "percent"),
            Column("new_players", "New"),
            Column("returning_players", "Returning"),
            Column("unlocks", "Unlocks"),
            Column("playtime_seconds", "Playtime", "hours"),
        ],
        [
            [
                d.date,
                d.active_players,
                d.weekly_active_players,
                d.monthly_active_players,
                d.stickiness,
                d.new_players,
                d.returning_players,
                d.unlocks,
                d.playtime_seconds,
            ]
            for d in report.days
        ],
    )


def _retention(report: Report) -> Table:
    return Table(
        "retention",
        "Retention by cohort",
        [
            Column("cohort_date", "First day", "date"),
            Column("players", "Players"),
            Column("day1_players", "Day 1"),
            Column("day1_percent", "Day 1 %", "percent"),
            Column("day7_players", "Day 7"),
            Column("day7_percent", "Day 7 %", "percent"),
            Column("day30_players", "Day 30"),
            Column("day30_percent", "Day 30 %", "percent"),
        ],
        [
            [c.date, c.size, c.day1, c.day1_percent, c.day7, c.day7_percent, c.day30, c.day30_percent]
            for c in report.cohorts
        ],
    )


def _achievements(report: Report) -> Table:
    return Table(
        "achievements",
        "Achievements",
        [
            Column("api_name", "API name", "text"),
            Column("name", "Name", "text"),
            Column("hidden", "Hidden", "flag"),
            Column("points", "Points"),
            Column("unlocks", "Unlocks in range"),
            Column("holders", "Players holding it"),
            Column("unlock_percent", "Unlocked by", "percent"),
            Column("rarity", "Rarity", "rarity"),
            Column("start_percent", "At the start", "percent"),
            Column("drift_points", "Drift", "drift"),
        ],
        [
            [a.api_name, a.name, a.hidden, a.points, a.unlocks, a.holders, a.unlock_percent, a.rarity]
            + [a.start_percent, a.drift]
            for a in report.achievements
        ],
    )


def bucket_bounds(report: Report) -> list[int | None]:
    """The time-to-unlock buckets' upper bounds, shared by every achievement (fixed
    log-scale bounds, analytics/aggregation.py), ascending; None for the open last one."""
    bounds: list[int | None] = []
    for row in report.time_to_unlock:
        for bucket in row.histogram:
            if bucket.upto_seconds not in bounds:
                bounds.append(bucket.upto_seconds)
    return sorted(bounds, key=lambda upto: float("inf") if upto is None else upto)


def upto_label(upto: int | None, bounds: list[int | None]) -> str:
    if upto is not None:
        return f"≤ {duration(upto)}"
    finite = [b for b in bounds if b is not None]
    return f"> {duration(finite[-1])}" if finite else "any"


def _time_to_unlock(report: Report) -> Table:
    bounds = bucket_bounds(report)
    finite = [b for b in bounds if b is not None]
    columns = [
        Column("api_name", "API name", "text"),
        Column("name", "Name", "text"),
        Column("samples", "Unlocks measured"),
        Column("p10_seconds", "10th percentile", "seconds"),
        Column("median_seconds", "Median", "seconds"),
        Column("p90_seconds", "90th percentile", "seconds"),
    ] + [
        Column(
            f"upto_{upto}s" if upto is not None else f"over_{finite[-1] if finite else 0}s", upto_label(upto, bounds)
        )
        for upto in bounds
    ]
    rows = []
    for row in report.time_to_unlock:
        counts = {bucket.upto_seconds: bucket.count for bucket in row.histogram}
        rows.append(
            [row.api_name, row.name, row.samples, row.p10_seconds, row.median_seconds, row.p90_seconds]
            + [counts.get(upto, 0) for upto in bounds]
        )
    return Table("time_to_unlock", "Time to unlock", columns, rows)


def _funnel(report: Report) -> Table:
    return Table(
        "funnel",
        "Progression funnel",
        [
            Column("step", "Step"),
            Column("api_name", "API name", "text"),
            Column("name", "Achievement", "text"),
            Column("reached", "Reached"),
            Column("reached_percent", "Reached %", "percent"),
            Column("stopped_here", "Stopped here"),
            Column("stopped_percent", "Stopped here %", "percent"),
        ],
        [
            [n, s.api_name, s.name, s.reached, s.reached_percent, s.stopped_here, s.stopped_percent]
            for n, s in enumerate(report.funnel.steps)
        ],
    )


def _completion(report: Report) -> Table:
    return Table(
        "completion",
        "Completion",
        [
            Column("from_percent", "From", "percent"),
            Column("to_percent", "To", "percent"),
            Column("players", "Players"),
            Column("share_percent", "Share", "percent"),
        ],
        [[b.from_percent, b.to_percent, b.players, b.share_percent] for b in report.completion],
    )


def playtime_label(upto: int | None, bounds: list[int | None]) -> str:
    if upto == 0:
        return "None reported"
    if upto is None:
        finite = [b for b in bounds if b is not None]
        return f"> {hours(finite[-1])}" if finite else "any"
    return f"≤ {duration(upto) if upto < 3600 else hours(upto)}"


def _playtime(report: Report) -> Table:
    bounds = [b.upto_seconds for b in report.playtime]
    return Table(
        "playtime",
        "Playtime per player",
        [
            Column("bucket", "Total playtime", "text"),
            Column("upto_seconds", "Up to (seconds)"),
            Column("players", "Players"),
            Column("share_percent", "Share", "percent"),
        ],
        [[playtime_label(b.upto_seconds, bounds), b.upto_seconds, b.players, b.share_percent] for b in report.playtime],
    )


def chart_labels(report: Report) -> dict[str, Any]:
    """The distributions' bucket labels, as the tables name them, for the page's charts."""
    bounds = bucket_bounds(report)
    playtime_bounds = [b.upto_seconds for b in report.playtime]
    return {
        "time_to_unlock": [{"upto_seconds": b, "label": upto_label(b, bounds)} for b in bounds],
        "completion": [f"{b.from_percent:g}–{b.to_percent:g}%" for b in report.completion],
        "playtime": [playtime_label(b, playtime_bounds) for b in playtime_bounds],
    }


TABLES: dict[str, Callable[[Report], Table]] = {
    "daily": _daily,
    "retention": _retention,
    "achievements": _achievements,
    "time_to_unlock": _time_to_unlock,
    "funnel": _funnel,
    "completion": _completion,
    "playtime": _playtime,
}


def table(report: Report, name: str) -> Table:
    return TABLES[name](report)


# A text cell a spreadsheet would read as a formula (OWASP, "CSV injection"): manifests
# name achievements, so their text is quoted with a leading apostrophe.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_text(table: Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([column.key for column in table.columns])
    for row in table.rows:
        writer.writerow(
            [
                "'" + raw(value) if column.unit == "text" and raw(value).startswith(FORMULA_STARTS) else raw(value)
                for value, column in zip(row, table.columns, strict=True)
            ]
        )
    return out.getvalue()


def csv_filename(report: Report, name: str) -> str:
    return f"{report.game.slug}-{name}-{report.start.isoformat()}-{report.end.isoformat()}.csv"
