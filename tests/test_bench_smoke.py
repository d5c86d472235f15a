"""`make bench-smoke` end to end: the benchmark harness loads its own data, starts the
production processes, measures every path at tiny scale and reports each figure measured,
non-zero and without a single error.

It takes about a minute; deselect it with `-m "not bench"`. It uses its own database
(questboard_bench_smoke) and Redis database (13) on the servers the suite runs against, never
the suite's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ("wrk", "pgbench", "redis-benchmark")

# Every figure of the report (bench/report.py builds one row for each).
EXPECTED_ROWS = [
    "noop",
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
    "idle_sockets",
    "live",
    "pgbench_single",
    "pgbench_batch",
    "redis_zrevrank",
    "redis_zcount",
    "redis_zadd",
    "redis_zrevrange_top100",
]


def _skip_reason() -> str:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"needs {', '.join(missing)} (Debian: apt-get install wrk postgresql-client redis-tools)"
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        return "needs PostgreSQL (DATABASE_URL): the bench loads its data with PostgreSQL's SQL"
    if not os.environ.get("REDIS_URL"):
        return "needs Redis (REDIS_URL): the rank index and the channel layer"
    if not os.environ.get("CELERY_BROKER_URL"):
        return "needs a broker (CELERY_BROKER_URL): the bench runs a Celery worker"
    return ""


SKIP = _skip_reason()
pytestmark = [pytest.mark.bench, pytest.mark.skipif(bool(SKIP), reason=SKIP or "nothing missing")]


def on_same_server(url: str, path: str) -> str:
    """`url` with its database (path) replaced: the bench's own, beside the suite's."""
    return urlunparse(urlparse(url)._replace(path=path))


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    artifacts = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--smoke",
            "--database-url",
            on_same_server(os.environ["DATABASE_URL"], "/questboard_bench_smoke"),
            "--redis-url",
            on_same_server(os.environ["REDIS_URL"], "/13"),
            "--broker-url",
            os.environ["CELERY_BROKER_URL"],
            "--artifacts",
            str(artifacts),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = artifacts / "bench-smoke-latest.json"
    assert report.exists(), f"no report (exit {done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return {"exit": done.returncode, "output": done.stdout, "report": json.loads(report.read_text())}


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


def test_the_report_records_the_machine_and_the_load(smoke: dict[str, Any]) -> None:
    report = smoke["report"]
    assert report["machine"]["nproc"] >= 1
    assert report["machine"]["postgresql"][:1].isdigit()
    assert report["load"]["players"] == 2_000
    # Every loaded player is ranked on the game's board: reads were served by the index.
    assert report["load"]["index_entries"] == 2_000
