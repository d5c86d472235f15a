"""Percentiles of latency samples, the same way for every generator written here."""

from __future__ import annotations

import math


def percentile(ordered: list[float], share: float) -> float:
    """The nearest-rank percentile of sorted samples (the value `share` of them are at or under)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(share / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(percentile(ordered, 50), 2),
        "p90_ms": round(percentile(ordered, 90), 2),
        "p95_ms": round(percentile(ordered, 95), 2),
        "p99_ms": round(percentile(ordered, 99), 2),
        "max_ms": round(ordered[-1], 2) if ordered else 0.0,
    }
