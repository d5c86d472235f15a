"""Template filters for numbers, so every page writes them alike (`infra.numbers`)."""

from __future__ import annotations

from django import template

from infra import numbers

register = template.Library()


@register.filter
def percent(value: float | None) -> str:
    """`{{ stats.completion|percent }}` → "66.7%"."""
    return numbers.percent(None if value in (None, "") else float(value))
