"""What one run is: where its database and Redis are, how big it is and how long it measures.

The benchmark never uses the developer's DATABASE_URL or REDIS_URL: its servers get their own
database (dropped and recreated each run), their own Redis database (flushed), their own
channel prefix and their own Celery queue, so a run cannot touch dev or test data. Every
setting can be given by a flag or by the BENCH_* variable named beside it; the smoke test
(tests/test_bench_smoke.py) gives each one derived from what the test run itself was given.
"""

from __future__ import annotations

import argparse
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from bench.dataset import FeedShape

ROOT = Path(__file__).resolve().parent.parent
# The load generator is one address and one game key making thousands of requests a second:
# their budgets are raised, not switched off, so every request still pays the rate limiter
# its round trip (docs/rate-limits.md) and the figures include it.
BENCH_REQUESTS_PER_MINUTE = 60_000_000
# The sections, in the order they run (`--only` takes these names).
SECTIONS = (
    "pgbench",
    "redis",
    "noop",
    "noop_plain",
    "rank",
    "around",
    "top100",
    "dashboard",
    "feed",
    "idle_sockets",
    "live",
    "pipeline",
    "light",
    "unlock_rate",
    "unlock",
    "batch",
)
# The seed's peak (167 unlocks/s with live toasts), and twice it.
PIPELINE_RATES = "167,333"


@dataclass(frozen=True)
class Preset:
    database_url: str
    redis_url: str
    channel_prefix: str
    celery_queue: str
    players: int
    duration: int  # seconds per wrk run at saturation
    moderate_duration: int  # seconds per wrk run at moderate load
    rate_duration: int  # seconds of each fixed-rate run
    idle_sockets: int
    live_players: int
    pgbench_seconds: int
    redis_requests: int
    pipeline_duration: int  # seconds of each open-loop rate of the pipeline section
    light_unlocks: int  # unlocks of the light-load tail, at LIGHT_RATE
    feed: FeedShape  # the friends' feed data (bench.dataset), loaded when its section runs


FULL = Preset(
    database_url="postgres://postgres@127.0.0.1:5432/questboard_bench",
    redis_url="redis://127.0.0.1:6379/14",
    channel_prefix="questboard-bench",
    celery_queue="questboard-bench",
    players=1_000_000,
    duration=15,
    moderate_duration=10,
    rate_duration=20,
    idle_sockets=10_000,
    live_players=200,
    pgbench_seconds=10,
    redis_requests=200_000,
    pipeline_duration=20,
    light_unlocks=60,
    feed=FeedShape(viewers=20, friends=200, pool=400, unlocks=2500, alerts=2000, seasons=10),
)

# Seconds, not minutes: the same code path at a scale that only proves it works.
SMOKE = Preset(
    database_url="postgres://postgres@127.0.0.1:5432/questboard_bench_smoke",
    redis_url="redis://127.0.0.1:6379/13",
    channel_prefix="questboard-bench-smoke",
    celery_queue="questboard-bench-smoke",
    players=2_000,
    duration=1,
    moderate_duration=1,
    rate_duration=1,
    idle_sockets=200,
    live_players=200,
    pgbench_seconds=1,
    redis_requests=10_000,
    pipeline_duration=1,
    light_unlocks=10,
    feed=FeedShape(viewers=2, friends=20, pool=30, unlocks=60, alerts=50, seasons=2),
)


@dataclass(frozen=True)
class Config:
    smoke: bool
    database_url: str
    redis_url: str
    broker_url: str
    channel_prefix: str
    celery_queue: str
    secret_key: str
    players: int
    workers: list[int]  # the first runs every section; the rest only noop and unlock
    duration: int
    moderate_duration: int
    rate_duration: int
    unlock_rate: int
    read_rate: int
    live_rate: int
    idle_sockets: int
    live_players: int
    pgbench_seconds: int
    redis_requests: int
    pipeline_rates: list[int]
    pipeline_duration: int
    light_unlocks: int
    light_rate: int
    http_port: int
    ws_port: int
    reuse: bool
    artifacts: Path
    feed: FeedShape
    server_env: dict[str, str] = field(default_factory=dict)
    only: frozenset[str] = frozenset()  # sections to run; empty: all

    def runs(self, section: str) -> bool:
        return not self.only or section in self.only

    def server_environment(self) -> dict[str, str]:
        """The environment every server process and management command of the run gets."""
        env = {
            key: value
            for key, value in os.environ.items()
            # The developer's own settings must not leak into the bench's servers.
            if key not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "TEST_DATABASE_NAME")
        }
        env.update(
            DJANGO_SETTINGS_MODULE="bench.settings",
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            CELERY_BROKER_URL=self.broker_url,
            CHANNEL_PREFIX=self.channel_prefix,
            # Its own Celery queue, so a bench worker never takes tasks published by a
            # developer's server or a test run sharing the same RabbitMQ, nor they its.
            CELERY_QUEUE=self.celery_queue,
            # The bench's servers speak plain HTTP on localhost.
            HTTPS_ONLY="0",
            SECRET_KEY=self.secret_key,
            DEBUG="0",
            # One log line per request would cost more than some of the endpoints measured.
            REQUEST_LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
            # The anonymous board reads; the game key gets its own (bench/load.py).
            RATE_LIMIT_ANONYMOUS=f"{BENCH_REQUESTS_PER_MINUTE}/minute",
            # The feed's readers: a few players' tokens, hundreds of requests a second.
            RATE_LIMIT_PLAYER=f"{BENCH_REQUESTS_PER_MINUTE}/minute",
        )
        env.update(self.server_env)
        return env


def free_port(*, besides: int = 0) -> int:
    """A port nothing listens on now (`besides` excluded: two picks could coincide)."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port != besides:
            return port


def parse_workers(value: str) -> list[int]:
    counts = [int(part) for part in value.split(",") if part.strip()]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("worker counts are positive integers, e.g. 4 or 4,2,3,6")
    return counts


def parse_rates(value: str) -> list[int]:
    rates = [int(part) for part in value.split(",") if part.strip()]
    if not rates or min(rates) < 1:
        raise argparse.ArgumentTypeError("rates are positive integers, e.g. 167,333")
    return rates


def parse_only(value: str) -> frozenset[str]:
    names = frozenset(name.strip() for name in value.split(",") if name.strip())
    unknown = sorted(names - set(SECTIONS))
    if unknown:
        raise argparse.ArgumentTypeError(f"no such section: {', '.join(unknown)} (sections: {', '.join(SECTIONS)})")
    return names


def parse_env(value: str) -> tuple[str, str]:
    name, sep, setting = value.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError("expected NAME=VALUE")
    return name, setting


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Questboard's benchmark: loads scale data, starts the production servers, measures, reports.",
    )
    p.add_argument("--smoke", action="store_true", help="tiny scale and seconds-long runs (make bench-smoke)")
    p.add_argument("--database-url", help="the bench's own database; dropped and recreated (BENCH_DATABASE_URL)")
    p.add_argument("--redis-url", help="the bench's own Redis database; flushed (BENCH_REDIS_URL)")
    p.add_argument("--broker-url", help="Celery broker (BENCH_BROKER_URL)")
    p.add_argument("--celery-queue", help="the bench's own Celery queue; purged (BENCH_CELERY_QUEUE)")
    p.add_argument("--channel-prefix", help="the bench's own channel-layer prefix (BENCH_CHANNEL_PREFIX)")
    p.add_argument("--players", type=int, help="players to load (BENCH_PLAYERS)")
    p.add_argument(
        "--workers",
        type=parse_workers,
        help="gunicorn sync workers; a list (4,2,3,6) also measures noop and unlock at each other count "
        "(BENCH_WORKERS, default 4)",
    )
    p.add_argument("--duration", type=int, help="seconds per saturation run (BENCH_DURATION)")
    p.add_argument("--moderate-duration", type=int, help="seconds per moderate-load run")
    p.add_argument("--rate-duration", type=int, help="seconds of each fixed-rate run")
    p.add_argument("--unlock-rate", type=int, default=167, help="fixed rate for the unlock p99 (default 167/s)")
    p.add_argument("--read-rate", type=int, default=200, help="fixed rate for the board reads' p99 (default 200/s)")
    p.add_argument("--live-rate", type=int, default=200, help="unlocks/s during the unlock-to-socket run")
    p.add_argument("--idle-sockets", type=int, help="idle WebSocket connections to hold (BENCH_IDLE_SOCKETS)")
    p.add_argument("--live-players", type=int, help="players listening on /ws/me/ during the live run")
    p.add_argument(
        "--pipeline-rates",
        type=parse_rates,
        help=f"open-loop unlock rates of the pipeline section, one after the other (default {PIPELINE_RATES})",
    )
    p.add_argument("--pipeline-duration", type=int, help="seconds at each pipeline rate (default 20)")
    p.add_argument("--light-unlocks", type=int, help="unlocks of the light-load tail (default 60)")
    p.add_argument("--light-rate", type=int, default=20, help="unlocks/s of the light-load tail (default 20/s)")
    p.add_argument("--pgbench-seconds", type=int, help="seconds per pgbench run")
    p.add_argument("--redis-requests", type=int, help="requests per redis-benchmark command")
    p.add_argument("--http-port", type=int, default=0, help="gunicorn port (default: a free one)")
    p.add_argument("--ws-port", type=int, default=0, help="daphne port (default: a free one)")
    p.add_argument("--reuse", action="store_true", help="keep the loaded database if it has the players already")
    p.add_argument("--artifacts", type=Path, default=ROOT / "artifacts", help="where the JSON report goes")
    p.add_argument(
        "--only",
        type=parse_only,
        default=frozenset(),
        metavar="SECTION,...",
        help=f"run only these sections, for iterating on one path: {', '.join(SECTIONS)}",
    )
    p.add_argument(
        "--env",
        type=parse_env,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the servers (repeatable), e.g. a rate limit",
    )
    return p


def from_args(argv: list[str] | None = None) -> Config:
    p = parser()
    args = p.parse_args(argv)
    preset = SMOKE if args.smoke else FULL

    def text(flag: str | None, variable: str, default: str) -> str:
        return flag if flag is not None else os.environ.get(variable, default)

    def number(flag: int | None, variable: str, default: int) -> int:
        return flag if flag is not None else int(os.environ.get(variable, default))

    http_port = args.http_port or free_port()
    cfg = Config(
        smoke=args.smoke,
        database_url=text(args.database_url, "BENCH_DATABASE_URL", preset.database_url),
        redis_url=text(args.redis_url, "BENCH_REDIS_URL", preset.redis_url),
        broker_url=text(args.broker_url, "BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//"),
        channel_prefix=text(args.channel_prefix, "BENCH_CHANNEL_PREFIX", preset.channel_prefix),
        celery_queue=text(args.celery_queue, "BENCH_CELERY_QUEUE", preset.celery_queue),
        secret_key=os.environ.get("BENCH_SECRET_KEY", "questboard-bench-secret-key-not-for-production-use"),
        players=number(args.players, "BENCH_PLAYERS", preset.players),
        workers=args.workers or parse_workers(os.environ.get("BENCH_WORKERS", "4")),
        duration=number(args.duration, "BENCH_DURATION", preset.duration),
        moderate_duration=args.moderate_duration or preset.moderate_duration,
        rate_duration=args.rate_duration or preset.rate_duration,
        unlock_rate=args.unlock_rate,
        read_rate=args.read_rate,
        live_rate=args.live_rate,
        idle_sockets=number(args.idle_sockets, "BENCH_IDLE_SOCKETS", preset.idle_sockets),
        live_players=args.live_players or preset.live_players,
        pgbench_seconds=args.pgbench_seconds or preset.pgbench_seconds,
        redis_requests=args.redis_requests or preset.redis_requests,
        pipeline_rates=args.pipeline_rates or parse_rates("20,40" if args.smoke else PIPELINE_RATES),
        pipeline_duration=args.pipeline_duration or preset.pipeline_duration,
        light_unlocks=args.light_unlocks or preset.light_unlocks,
        light_rate=args.light_rate,
        http_port=http_port,
        ws_port=args.ws_port or free_port(besides=http_port),
        reuse=args.reuse,
        artifacts=args.artifacts,
        feed=preset.feed,
        server_env=dict(args.env),
        only=args.only,
    )
    # The live players are set apart from the rest, and the batch unlocks need 100 others.
    if cfg.players < cfg.live_players + 100:
        p.error(f"--players must be at least --live-players + 100 ({cfg.live_players + 100})")
    if min(cfg.duration, cfg.moderate_duration, cfg.rate_duration, cfg.pgbench_seconds, cfg.pipeline_duration) < 1:
        p.error("durations are whole seconds, at least 1")
    if min(cfg.idle_sockets, cfg.unlock_rate, cfg.live_rate, cfg.light_unlocks, cfg.light_rate) < 1:
        p.error("--idle-sockets, --unlock-rate, --live-rate, --light-unlocks and --light-rate must be positive")
    # The run drops its database and flushes its Redis database: never someone else's.
    if "bench" not in urlparse(cfg.database_url).path:
        p.error(f"the bench drops its database, so its name must contain 'bench': {cfg.database_url}")
    if cfg.redis_url.rstrip("/") == os.environ.get("REDIS_URL", "").rstrip("/"):
        p.error(f"the bench flushes its Redis database, so it must not be REDIS_URL's: {cfg.redis_url}")
    return cfg
