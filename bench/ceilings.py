"""This machine's ceilings, measured in the same run as the app: pgbench running the unlock's
durable write, and redis-benchmark running the board reads' sorted-set commands on a
1,000,000-member set. Ratios to these say how much the app adds to the work it must do.

Both work on copies (tables `bench_pg_*`, key `bench:zset`), so the app's data and rank
index stay exactly as the app left them.
"""

from __future__ import annotations

import csv
import re
from typing import Any
from urllib.parse import urlparse

import psycopg
import redis
from psycopg import sql

from bench import dataset
from bench.config import Config
from bench.load import board_key, connect
from bench.tools import find, run_measured

COPIES = {"bench_pg_unlock": "achievements_unlock", "bench_pg_stats": "stats_playergamestats"}
ZSET = "bench:zset"


def available() -> bool:
    return find("pgbench") is not None and find("redis-benchmark") is not None


def prepare_tables(conn: psycopg.Connection, game_id: str) -> None:
    """Copies of the unlock's two tables with the same indexes, checks and foreign keys."""
    drop_tables(conn)
    for copy, original in COPIES.items():
        conn.execute(
            sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(sql.Identifier(copy), sql.Identifier(original))
        )
        # LIKE leaves foreign keys out; each insert of the real path checks them.
        keys = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
            [original],
        ).fetchall()
        for (definition,) in keys:
            conn.execute(sql.SQL("ALTER TABLE {} ADD ").format(sql.Identifier(copy)) + sql.SQL(definition))
    conn.execute(
        """
        CREATE TABLE bench_pg_achievement AS
        SELECT substr(api_name, 2)::int AS idx, id, game_id, points FROM achievements_achievement WHERE game_id = %s
        """,
        [game_id],
    )
    conn.execute("ALTER TABLE bench_pg_achievement ADD PRIMARY KEY (idx)")
    conn.commit()


def drop_tables(conn: psycopg.Connection) -> None:
    conn.execute("DROP TABLE IF EXISTS bench_pg_unlock, bench_pg_stats, bench_pg_achievement")
    conn.commit()


def pgbench(cfg: Config, script: str, rows_per_transaction: int) -> dict[str, Any]:
    measured = run_measured(
        [
            find("pgbench") or "pgbench",
            "-n",
            "-c",
            "8",
            "-j",
            "2",
            "-T",
            str(cfg.pgbench_seconds),
            "-D",
            f"players={cfg.players}",
            "-D",
            f"achievements={dataset.ACHIEVEMENTS}",
            "-f",
            f"bench/pgbench/{script}",
            cfg.database_url,
        ],
        timeout=cfg.pgbench_seconds + 120,
    )
    output = measured.stdout + measured.stderr
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", output)
    if measured.returncode or tps is None:
        raise RuntimeError(f"pgbench {script} failed ({measured.returncode}):\n{output[-2000:]}")
    failed = re.search(r"number of failed transactions: (\d+)", output)
    latency = re.search(r"latency average = ([\d.]+) ms", output)
    return {
        "script": script,
        "clients": 8,
        "tps": float(tps.group(1)),
        "rows_per_transaction": rows_per_transaction,
        "throughput": round(float(tps.group(1)) * rows_per_transaction, 1),  # rows/s
        "latency_average_ms": float(latency.group(1)) if latency else 0.0,
        "errors": int(failed.group(1)) if failed else 0,
        "generator_cpu_seconds": measured.cpu_seconds,
        "generator_cpu_share": measured.cpu_share,
    }


def postgres(cfg: Config, game_id: str) -> dict[str, Any]:
    with connect(cfg.database_url) as conn:
        prepare_tables(conn, game_id)
        try:
            return {
                "single": pgbench(cfg, "unlock.sql", 1),
                "batch": pgbench(cfg, "unlock_batch.sql", 100),
            }
        finally:
            drop_tables(conn)


def redis_commands(cfg: Config, game_id: str) -> dict[str, Any]:
    """The board reads' commands (and the unlock's ZADD GT) on a copy of the game's board."""
    client = redis.Redis.from_url(cfg.redis_url)
    if not client.copy(board_key(game_id), ZSET, replace=True):
        raise RuntimeError(f"no board {board_key(game_id)} in Redis: was the index rebuilt?")
    member = dataset.player_id(1)
    score = int(client.zscore(ZSET, member) or 0)
    commands = {
        "zrevrank": ["ZREVRANK", ZSET, member],
        "zcount": ["ZCOUNT", ZSET, f"({score}", "+inf"],
        # New members with random scores: the set grows by at most the request count.
        "zadd": ["ZADD", ZSET, "GT", "__rand_int__", "member:__rand_int__"],
        "zrevrange_top100": ["ZREVRANGE", ZSET, "0", "99", "WITHSCORES"],
    }
    try:
        members = client.zcard(ZSET)
        results = {name: redis_benchmark(cfg, command) for name, command in commands.items()}
    finally:
        client.delete(ZSET)
    return {"members": members, **results}


def redis_benchmark(cfg: Config, command: list[str]) -> dict[str, Any]:
    url = urlparse(cfg.redis_url)
    measured = run_measured(
        [
            "redis-benchmark",
            "-h",
            url.hostname or "127.0.0.1",
            "-p",
            str(url.port or 6379),
            "--dbnum",
            url.path.lstrip("/") or "0",
            "-n",
            str(cfg.redis_requests),
            "-c",
            "32",
            "-P",
            "1",
            "-r",
            "1000000",
            "--csv",
            *command,
        ],
        timeout=300,
    )
    rows = list(csv.reader(measured.stdout.strip().splitlines()))
    if measured.returncode or len(rows) < 2:
        raise RuntimeError(f"redis-benchmark {command[0]} failed:\n{measured.stdout[-1000:]}{measured.stderr[-1000:]}")
    figures = dict(zip(rows[0], rows[-1], strict=False))
    return {
        "command": " ".join(command),
        "throughput": float(figures["rps"]),
        "p50_ms": float(figures.get("p50_latency_ms", 0)),
        "p95_ms": float(figures.get("p95_latency_ms", 0)),
        "p99_ms": float(figures.get("p99_latency_ms", 0)),
        "errors": 0,
        "generator_cpu_seconds": measured.cpu_seconds,
        "generator_cpu_share": measured.cpu_share,
    }
