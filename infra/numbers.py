"""How the site writes numbers people compare: one format for every percentage."""

from __future__ import annotations


def percent(value: float | None) -> str:
    """A percentage (0-100) with one decimal, as game stores show unlock rates: "66.7%".
    A share above zero that would round to nothing reads "<0.1%", so a rare achievement
    never looks unearned; no value reads "–"."""
    if value is None:
        return "–"
    if 0 < value < 0.05:
        return "<0.1%"
    return f"{value:.1f}%"
