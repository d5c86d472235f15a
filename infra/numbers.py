"""How the site computes and writes numbers people compare: one rule for every percentage
(the value kept and served, and its text on a page) and one for every length of time."""

from __future__ import annotations


def share(part: float, whole: float, *, places: int = 2) -> float:
    """`part` of `whole` in percent, rounded to `places` decimals (two, as every unlock
    percentage, completion and percentile is kept and served); 0.0 when `whole` is zero."""
    if not whole:
        return 0.0
    return round(100.0 * part / whole, places)


def percent(value: float | None) -> str:
    """A percentage (0-100) with one decimal, as game stores show unlock rates: "66.7%".
    A share above zero that would round to nothing reads "<0.1%", so a rare achievement
    never looks unearned; no value reads "–"."""
    if value is None:
        return "–"
    if 0 < value < 0.05:
        return "<0.1%"
    return f"{value:.1f}%"


def duration(seconds: float) -> str:
    """A length of time as people say it: "4.5 s", "45 s", "12 min", "3 h 05 min", "2 h",
    "2.5 days". Two days and more are counted in days to one decimal, so 60 hours never
    reads as "2 days" in one place and "2.5 days" in another."""
    seconds = max(float(seconds), 0.0)
    if seconds < 59.5:
        return f"{seconds:.0f} s" if seconds >= 10 or seconds.is_integer() else f"{seconds:.1f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"
    return f"{round((hours * 60 + minutes) / 1440, 1):g} days"


def hours(seconds: float) -> str:
    """Playtime, in hours as games count it: "12.5 h"."""
    return f"{round(seconds / 3600, 1):g} h"
