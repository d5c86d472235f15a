"""The run's results: one table row per figure, held against its target, printed and
written as JSON (artifacts/bench-<timestamp>.json and artifacts/bench-latest.json).

The targets are the platform's performance goals, each written in its row below and listed
in docs/benchmarks.md. A row with errors never counts as met.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import redis

from bench.config import ROOT, SECTIONS, Config
from bench.cpu import SERVER_ROLES, SHARED_ROLES

READS = ("rank", "around", "top100", "dashboard")
# The whole pipeline's CPU per unlock, every server process summed (the target).
CPU_TARGET_MS = 4.0


@dataclass
class Row:
    key: str
    label: str
    throughput: float
    unit: str
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    errors: int
    ratio_to_noop: float | None
    target: str
    met: bool | None  # None: no target (a ceiling, or a figure for the record)
    generator: str  # the load generator's CPU use, to show it was not the bottleneck


def row(
    key: str,
    label: str,
    figures: dict[str, Any],
    *,
    unit: str = "req/s",
    noop: float | None = None,
    target: str = "",
    met: bool | None = None,
    generator: str = "",
) -> Row:
    throughput = float(figures.get("throughput", 0.0))
    errors = int(figures.get("errors", 0))
    if "failed" in figures:
        label = f"{label} FAILED: {figures['failed'][:80]}"
    ratio = round(throughput / noop, 2) if noop else None
    if errors:
        met = False
    return Row(
        key=key,
        label=label,
        throughput=throughput,
        unit=unit,
        p50_ms=figures.get("p50_ms"),
        p95_ms=figures.get("p95_ms"),
        p99_ms=figures.get("p99_ms"),
        errors=errors,
        ratio_to_noop=ratio,
        target=target,
        met=met,
        generator=generator or cpu_note(figures),
    )


def cpu_note(figures: dict[str, Any]) -> str:
    share = figures.get("generator_cpu_share")
    if share is not None:
        return f"{share:.2f} core"
    seconds = figures.get("generator_cpu_seconds")
    return f"{seconds:.1f} cpu-s" if seconds is not None else ""


def below(value: float | None, limit: float) -> bool:
    return value is not None and value < limit


def part(sections: dict[str, Any], *path: str) -> dict[str, Any]:
    """A section's figures, or a failure row's if the section (or that part) did not run."""
    figures: Any = sections
    for name in path:
        figures = figures.get(name) if isinstance(figures, dict) else None
        if figures is None or "failed" in figures:
            return {"throughput": 0.0, "errors": 1, "failed": (figures or {}).get("failed", "did not run")}
    return figures


def asked(cfg: Config, key: str) -> bool:
    """Whether a row's section was asked for: with `--only`, the sections left out are not
    reported (nor counted as failures); rows of no section (the worker sweep) always are."""
    names = sorted((name for name in SECTIONS if key == name or key.startswith(f"{name}_")), key=len, reverse=True)
    return not cfg.only or not names or names[0] in cfg.only


def build_rows(cfg: Config, sections: dict[str, Any]) -> list[Row]:
    noop_figures = part(sections, "noop")
    noop = noop_figures["throughput"] or None
    rows = [row("noop", f"noop (ceiling, {cfg.workers[0]} workers){web_ms(noop_figures)}", noop_figures)]
    plain = part(sections, "noop_plain")
    # Above 1: the plain app is faster; the ratio is what the app's middleware and settings cost.
    rows.append(
        row(
            "noop_plain",
            f"plain DRF do-nothing app, no middleware{web_ms(plain)}",
            plain,
            noop=noop,
        )
    )

    unlock = part(sections, "unlock")
    rows.append(
        row(
            "unlock",
            "unlock, single, saturation",
            unlock,
            noop=noop,
            target=">= 1000/s and >= 0.5x noop",
            met=unlock["throughput"] >= 1000 and unlock["throughput"] >= 0.5 * (noop or 0),
        )
    )
    rate = part(sections, "unlock_rate")
    rows.append(
        row(
            "unlock_rate",
            f"unlock, single, {cfg.unlock_rate}/s open loop",
            rate,
            target="p99 < 50 ms",
            met=below(rate.get("p99_ms"), 50),
        )
    )
    batch = part(sections, "batch")
    rows.append(
        row(
            "batch",
            "unlock, batches of 100",
            batch,
            unit="unlocks/s",
            target=">= 10,000 unlocks/s",
            met=batch["throughput"] >= 10_000,
        )
    )
    for read in READS:
        moderate, saturation = part(sections, read, "moderate"), part(sections, read, "saturation")
        at_rate = part(sections, read, "rate")
        timed = read != "dashboard"  # the dashboard has no latency target
        rows.append(
            row(
                f"{read}_rate",
                f"{read}, {cfg.read_rate}/s open loop",
                at_rate,
                target="p99 < 10 ms" if timed else "",
                met=below(at_rate.get("p99_ms"), 10) if timed else None,
            )
        )
        rows.append(row(f"{read}_moderate", f"{read}, 4 connections closed loop (-c4)", moderate))
        rows.append(
            row(
                f"{read}_saturation",
                f"{read}, saturation (-c32)",
                saturation,
                noop=noop,
                target=">= 0.5x noop" if timed else "",
                met=saturation["throughput"] >= 0.5 * (noop or 0) if timed else None,
            )
        )
    feed = cfg.feed
    what = f"feed ({feed.friends} friends with {feed.unlocks:,} unlocks each), first page"
    at_rate = part(sections, "feed", "rate")
    rows.append(
        row(
            "feed_rate",
            f"{what}, {cfg.read_rate}/s open loop",
            at_rate,
            target="p99 < 20 ms",
            met=below(at_rate.get("p99_ms"), 20),
        )
    )
    rows.append(row("feed_moderate", f"{what}, 4 connections closed loop (-c4)", part(sections, "feed", "moderate")))
    rows.append(row("feed_saturation", f"{what}, saturation (-c32)", part(sections, "feed", "saturation"), noop=noop))
    later = what.replace("first page", "second page (the statement, as a first page after news)")
    rows.append(row("feed_later_moderate", f"{later}, -c4", part(sections, "feed", "later_moderate")))
    rows.append(row("feed_later_saturation", f"{later}, -c32", part(sections, "feed", "later_saturation"), noop=noop))
    idle = part(sections, "idle_sockets")
    wanted = cfg.idle_sockets if cfg.smoke else 10_000
    rows.append(
        row(
            "idle_sockets",
            f"idle sockets held by one Daphne ({idle.get('kib_per_connection', '?')} KiB each)",
            idle | {"throughput": idle.get("connected", 0)},
            unit="sockets",
            target=f">= {wanted:,} in one process",
            met=idle.get("connected", 0) >= wanted,
        )
    )
    live = part(sections, "live")
    rows.append(
        row(
            "live",
            f"unlock to socket at {cfg.live_rate}/s ({live.get('never_arrived', '?')} never arrived)",
            live,
            unit="events/s",
            target="p99 < 100 ms, none lost",
            met=below(live.get("p99_ms"), 100) and live.get("never_arrived") == 0,
        )
    )
    rows += pipeline_rows(cfg, sections)
    for name in ("single", "batch"):
        figures = part(sections, "pgbench", name)
        rows.append(
            row(
                f"pgbench_{name}",
                f"pgbench unlock write, {figures.get('rows_per_transaction', '?')} row(s)/txn "
                f"({figures.get('tps', 0):.0f} tps)",
                figures,
                unit="rows/s",
            )
        )
    for name in ("zrevrank", "zcount", "zadd", "zrevrange_top100"):
        rows.append(row(f"redis_{name}", f"redis-benchmark {name}", part(sections, "redis", name), unit="cmd/s"))
    for entry in sections.get("sweep", []):
        workers = entry["workers"]
        sweep_noop = part(entry, "noop")
        rows.append(row(f"sweep_{workers}_noop", f"noop, {workers} workers", sweep_noop))
        rows.append(
            row(
                f"sweep_{workers}_unlock",
                f"unlock, single, {workers} workers",
                part(entry, "unlock"),
                noop=sweep_noop["throughput"] or None,
            )
        )
    return [r for r in rows if asked(cfg, r.key)]


def web_ms(figures: dict[str, Any]) -> str:
    ms = figures.get("web_cpu_ms_per_request")
    return f", gunicorn {ms:.2f} ms CPU/req" if isinstance(ms, int | float) else ""


def pipeline_rows(cfg: Config, sections: dict[str, Any]) -> list[Row]:
    """Each pipeline rate as two rows (its requests; its toasts), then the light-load tail.
    Lost toasts are a target missed, not an error of the run."""
    rows = []
    peak = cfg.pipeline_rates[0]
    for rate in cfg.pipeline_rates:
        phase = part(sections, "pipeline", "phases", f"{rate}/s")
        http = phase.get("http", {})
        at_peak = rate == peak
        rows.append(
            row(
                f"pipeline_{rate}",
                f"pipeline {rate}/s open loop, {phase.get('sockets', '?')} sockets: requests",
                phase | {key: http.get(key) for key in ("p50_ms", "p95_ms", "p99_ms")},
                unit="unlocks/s",
                target="0 errors, p99 < 50 ms" if at_peak else "0 errors",
                met=below(http.get("p99_ms"), 50) if at_peak else "failed" not in phase,
            )
        )
        lost = phase.get("lost", "?")
        rows.append(
            row(
                f"pipeline_{rate}_toast",
                f"pipeline {rate}/s: unlock to toast (max {phase.get('max_ms', 0):,.0f} ms, {lost} lost)",
                phase | {"throughput": phase.get("toasts_received", 0) / cfg.pipeline_duration},
                unit="toasts/s",
                target="p99 < 100 ms, 0 lost" if at_peak else "0 lost",
                met=(below(phase.get("p99_ms"), 100) if at_peak else True) and lost == 0,
            )
        )
    light = part(sections, "light")
    lost = light.get("lost", "?")
    rows.append(
        row(
            "light_toast",
            f"light load {cfg.light_unlocks} at {cfg.light_rate}/s: unlock to toast "
            f"(p90 {light.get('p90_ms', 0):.0f}, max {light.get('max_ms', 0):.0f} ms, {lost} lost)",
            light | {"throughput": light.get("toasts_received", 0) / max(light.get("seconds", 1), 1e-9)},
            unit="toasts/s",
            target="every toast < 100 ms",
            met=below(light.get("max_ms"), 100) and lost == 0,
        )
    )
    return rows


def cpu_rows(cfg: Config, sections: dict[str, Any]) -> list[dict[str, Any]]:
    """ms of CPU per unlock, by process, for every section that unlocked."""
    measured = [("unlock (saturation)", part(sections, "unlock")), ("batch (100 a request)", part(sections, "batch"))]
    for rate in cfg.pipeline_rates:
        measured.append((f"pipeline {rate}/s", part(sections, "pipeline", "phases", f"{rate}/s")))
    measured.append((f"light {cfg.light_rate}/s", part(sections, "light")))
    rows = []
    for name, figures in measured:
        usage = figures.get("cpu")
        if not usage:
            continue
        total = usage["total_ms_per_unlock"]
        rows.append(
            {
                "section": name,
                "unlocks": usage["unlocks"],
                "window_seconds": usage["window_seconds"],
                **{role: usage["ms_per_unlock"].get(role) for role in (*SERVER_ROLES, "loadgen", "other")},
                "total": total,
                "with_loadgen": usage["with_loadgen_ms_per_unlock"],
                "iowait": usage["machine"]["iowait_share"],
                "steal": usage["machine"]["steal_share"],
                "target": f"total <= {CPU_TARGET_MS:g} ms",
                "met": total is not None and total <= CPU_TARGET_MS,
            }
        )
    return rows


def print_cpu_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    roles = [*SERVER_ROLES, "loadgen", "other"]
    headers = [
        "ms CPU per unlock",
        *(f"{r}*" if r in SHARED_ROLES else r for r in roles),
        "total",
        "iowait",
        "steal",
        "target",
        "met?",
    ]

    def ms(value: float | None) -> str:
        return f"{value:.2f}" if value is not None else "-"

    def share(value: float | None) -> str:
        return f"{100 * value:.0f}%" if value is not None else "-"

    lines = [
        [
            r["section"],
            *(ms(r[role]) for role in roles),
            ms(r["total"]),
            share(r["iowait"]),
            share(r["steal"]),
            r["target"],
            "yes" if r["met"] else "NO",
        ]
        for r in rows
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *lines, strict=True)]
    for cells in [headers, ["-" * w for w in widths], *lines]:
        print(" | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)))
    print(
        "total: every server process (loadgen beside it, not in it); postgres: the bench database's backends only; "
        "* shared with everything else on the machine; other: the machine's busy CPU beyond all of these "
        "(PostgreSQL's shared processes, the kernel, anything else); iowait, steal: shares of the cores' time"
    )


def print_table(rows: list[Row]) -> None:
    headers = ["path", "throughput", "p50", "p95", "p99", "errors", "x noop", "target", "met?", "generator"]

    def ms(value: float | None) -> str:
        return f"{value:.1f} ms" if value is not None else "-"

    lines = [
        [
            r.label,
            f"{r.throughput:,.0f} {r.unit}",
            ms(r.p50_ms),
            ms(r.p95_ms),
            ms(r.p99_ms),
            str(r.errors),
            f"{r.ratio_to_noop:.2f}" if r.ratio_to_noop is not None else "-",
            r.target or "-",
            {True: "yes", False: "NO", None: "-"}[r.met],
            r.generator,
        ]
        for r in rows
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *lines, strict=True)]
    for cells in [headers, ["-" * w for w in widths], *lines]:
        print(" | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)))


def machine(cfg: Config) -> dict[str, Any]:
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "memory_mib": _meminfo_mib(),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_at_start": [round(value, 2) for value in os.getloadavg()],
    }
    try:
        with psycopg.connect(cfg.database_url, connect_timeout=5) as conn:
            info["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
    except psycopg.Error as error:
        info["postgresql"] = f"unknown ({error})"
    try:
        info["redis"] = redis.Redis.from_url(cfg.redis_url).info("server")["redis_version"]
    except redis.RedisError as error:
        info["redis"] = f"unknown ({error})"
    if shutil.which("wrk"):
        first = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()
        info["wrk"] = first[0] if first else ""
    info["git"] = _git()
    return info


def _git() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    # Others may be changing the tree while the bench runs: record what it measured.
    return {"commit": git("rev-parse", "HEAD"), "changed_files": len(git("status", "--porcelain").splitlines())}


def _meminfo_mib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 0


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def write(cfg: Config, document: dict[str, Any], rows: list[Row], cpu: list[dict[str, Any]]) -> Path:
    cfg.artifacts.mkdir(parents=True, exist_ok=True)
    document = document | {"rows": [asdict(r) for r in rows], "cpu_per_unlock": cpu}
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    prefix = "bench-smoke" if cfg.smoke else "bench"
    path = cfg.artifacts / f"{prefix}-{stamp}.json"
    text = json.dumps(document, indent=2, default=str)
    path.write_text(text)
    (cfg.artifacts / f"{prefix}-latest.json").write_text(text)
    return path
