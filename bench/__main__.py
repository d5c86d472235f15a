"""`python -m bench`: load scale data, start the production processes, measure, report.

    python -m bench                 # full run (make bench): 1,000,000 players
    python -m bench --smoke         # the same path at tiny scale, in about a minute (make bench-smoke)
    python -m bench --workers 4,2,3,6   # also noop and unlock at 2, 3 and 6 gunicorn workers

Exit status: 0 when every figure was measured without a single error, 2 when any request
failed or a section could not run (the table and the JSON say which), 3 when a tool is
missing. Targets not met do not change it: they are findings, not failures of the harness.
"""

from __future__ import annotations

import asyncio
import fcntl
import http.client
import json
import os
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

from bench import ceilings, config, cpu, dataset, load, report, sockets, tools, wrk
from bench.config import Config, free_port
from bench.load import Loaded
from bench.openloop import fire, get, post
from bench.servers import Servers, management_commands, raise_file_limit

TOOLS = ("wrk", "pgbench", "redis-benchmark")
LOG_ERROR = re.compile(r"Traceback|\bERROR\b|\bCRITICAL\b")
ACCESS_5XX = re.compile(r'" 5\d\d ')
# Unlocks a saturation run may make per second, at most, for the check that enough fresh
# pairs are left (twice the batch target of 10,000/s); the cursor then moves only as far as
# wrk really went. Past the last pair wrk would get 404s, counted as errors.
UNLOCK_ROOM_PER_SECOND = 20_000
# A toast not on its player's socket this long after the last unlock of its phase was sent
# is counted lost (the pipeline and light-load sections).
TOAST_GRACE_MS = 5000.0
DRAIN_SECONDS = 240
FEED_PATH = "/api/v1/feed"
DEFAULT_FEED_PAGE = 20  # players.feed.DEFAULT_LIMIT


class Run:
    """One benchmark run over running servers: each section, in the order they run."""

    def __init__(
        self, cfg: Config, loaded: Loaded, servers: Servers, tokens: dict[str, str], feed_tokens: list[str]
    ) -> None:
        self.cfg = cfg
        self.loaded = loaded
        self.servers = servers
        self.tokens = tokens  # access tokens of the live players, by player id
        self.feed_auths = [f"Bearer {token}" for token in feed_tokens]  # the feed's viewers
        self.url = f"http://127.0.0.1:{cfg.http_port}"
        self.http_pairs = dataset.http_pairs(cfg.players, cfg.live_players)
        self.live_pairs = dataset.live_pairs(cfg.players, cfg.live_players)
        self.settled: dict[str, float] = {}
        self.sections: dict[str, Any] = {}
        self.deaths: list[dict[str, str]] = []
        self.meter = cpu.Meter(
            lambda: {server.pid: name for name, server in servers.running.items() if server.alive()},
            database=load.database_name(cfg.database_url),
            redis_port=urlparse(cfg.redis_url).port or 6379,
        )

    # --- helpers ---------------------------------------------------------------------------

    def section(self, name: str, measure: Callable[[], Any]) -> Any:
        """Run one section after the servers went quiet; a failure is recorded, not raised,
        so one misbehaving endpoint still leaves every other figure in the report."""
        if self.cfg.only and name not in self.cfg.only:
            return None
        self.settled[name] = self.servers.settle(window=0.3 if self.cfg.smoke else 1.0)
        print(f"-- {name}", flush=True)
        started = time.perf_counter()
        # A server that died is an error of the run, said once; the measurements go on, so
        # that what still works is still measured (a dead relay only delays live events).
        for death in self.servers.newly_dead():
            print(f"   {death}", flush=True)
            self.deaths.append({"noticed_before": name, "what": death})
        try:
            result = measure()
        except Exception as error:
            # Whatever went wrong (an endpoint, a tool, a server), the section reports it.
            result = failed(str(error))
        self.sections[name] = result
        print(f"   {summary_line(result)} ({time.perf_counter() - started:.0f} s)", flush=True)
        return result

    def run_wrk(
        self, script: str, args: list[str], *, seconds: int, shape: tuple[int, int] = wrk.SATURATION, url: str = ""
    ) -> dict:
        """A wrk run, with the share of a core the servers used during it."""
        cpu_before = self.servers.cpu_seconds()
        result = wrk.run(script, url or self.url, args, seconds=seconds, shape=shape)
        figures = result.as_dict()
        figures["server_cpu_share"] = round((self.servers.cpu_seconds() - cpu_before) / result.seconds, 2)
        return figures

    def drained(self) -> float:
        """Wait for the unlocks' background work (relay, Celery, Daphne) to finish, inside
        the CPU window: what an unlock costs includes what it sets off. Waits at most
        DRAIN_SECONDS (the smoke run only proves the path: seconds); a figure whose drain
        reached that bound undercounts the background work (the JSON says so)."""
        if self.cfg.smoke:
            return self.servers.settle(window=0.3, timeout=5)
        return self.servers.settle(window=1.0, timeout=DRAIN_SECONDS)

    def get(self, path: str, *, players: bool, shape: tuple[int, int], seconds: int, auth: str = "") -> dict:
        args = [path, str(self.cfg.players if players else 0), auth]
        return self.run_wrk("get.lua", args, seconds=seconds, shape=shape)

    def unlocks(self, *, batch: int, seconds: int) -> dict:
        """Fresh pairs from the cursor; the cursor then moves past what wrk used."""
        base = load.position(self.cfg, dataset.HTTP_CURSOR)
        room = UNLOCK_ROOM_PER_SECOND * seconds
        self.http_pairs.pair(base + room)  # raises before the run if the pairs would run out
        path = "/api/v1/achievements/unlock" + ("/batch" if batch > 1 else "")
        threads = wrk.SATURATION[0]
        args = [path, self.loaded.key, str(base), str(self.http_pairs.first_player), str(self.http_pairs.span)]
        args += [str(dataset.PRELOADED), str(threads), str(batch)]
        window = self.meter.window()
        figures = self.run_wrk("unlock.lua", args, seconds=seconds)
        figures["drain_seconds"] = self.drained()
        figures["cpu"] = window.stop(unlocks=max(figures["requests"] - figures["errors"], 0) * batch)
        load.advance_to(self.cfg, dataset.HTTP_CURSOR, figures["next"])
        if batch > 1:
            figures["requests_per_second"] = figures["throughput"]
            figures["throughput"] = round(figures["throughput"] * batch, 1)  # unlocks/s
        return figures

    def warm_up(self) -> None:
        """A few requests of each kind first: each gunicorn worker opens its database
        connection and fills its caches on its first requests, not in the measurements."""
        game = self.loaded.game_id
        rounds = 6 * max(self.cfg.workers)
        player = dataset.player_id(1)
        paths = ["/bench/noop", f"/api/v1/leaderboards/{game}", f"/api/v1/leaderboards/{game}/player/{player}"]
        paths += [f"/api/v1/leaderboards/{game}/around/{player}", f"/api/v1/players/{player}/dashboard"]
        headers = {"Authorization": f"Api-Key {self.loaded.key}", "Content-Type": "application/json"}
        base = load.take(self.cfg, dataset.HTTP_CURSOR, rounds)
        for i in range(rounds):
            for path in paths:
                request("GET", self.cfg.http_port, path, headers=headers)
            for auth in self.feed_auths[:2]:
                request("GET", self.cfg.http_port, FEED_PATH, headers={"Authorization": auth})
            n, achievement = self.http_pairs.pair(base + i)
            body = json.dumps({"player_id": dataset.player_id(n), "achievement": dataset.api_name(achievement)})
            request("POST", self.cfg.http_port, "/api/v1/achievements/unlock", body=body, headers=headers)

    # --- the sections ----------------------------------------------------------------------

    def run_all(self) -> dict[str, Any]:
        cfg, game = self.cfg, self.loaded.game_id
        self.warm_up()
        self.section("pgbench", lambda: ceilings.postgres(cfg, game))
        self.section("redis", lambda: ceilings.redis_commands(cfg, game))
        self.section("noop", lambda: self.noop(self.url))
        self.section("noop_plain", self.noop_plain)
        # Reads before writes: the data they read is the loaded data, and no write's
        # background work (announcements, index upkeep) runs beside them.
        reads = {
            "rank": (f"/api/v1/leaderboards/{game}/player/{{player}}", True, ""),
            "around": (f"/api/v1/leaderboards/{game}/around/{{player}}", True, ""),
            "top100": (f"/api/v1/leaderboards/{game}", False, ""),
            "dashboard": ("/api/v1/players/{player}/dashboard", True, f"Api-Key {self.loaded.key}"),
        }
        for name, (path, players, auth) in reads.items():
            self.section(name, lambda path=path, players=players, auth=auth: self.read(path, players, auth))
        self.section("feed", self.feed)
        self.section("idle_sockets", self.idle_sockets)
        # The live run before the write floods, so its events queue behind no backlog.
        self.section("live", self.live)
        self.section("pipeline", self.pipeline)
        self.section("light", self.light)
        self.section("unlock_rate", self.unlock_rate)
        self.section("unlock", lambda: self.unlocks(batch=1, seconds=cfg.duration))
        self.section("batch", lambda: self.unlocks(batch=dataset.BATCH, seconds=cfg.duration))
        if len(cfg.workers) > 1:
            self.sweep()
        return self.sections

    def noop(self, url: str) -> dict[str, Any]:
        """The do-nothing view at saturation, with the web processes' CPU per request."""
        window = self.meter.window()
        figures = self.run_wrk("get.lua", ["/bench/noop", "0", ""], seconds=self.cfg.duration, url=url)
        measured = window.stop(unlocks=figures["requests"])
        web = "web_plain" if url != self.url else "web"
        figures["web_cpu_ms_per_request"] = (
            round(1000 * measured["cpu_seconds"].get(web, 0.0) / figures["requests"], 3)
            if figures["requests"]
            else None
        )
        return figures

    def noop_plain(self) -> dict[str, Any]:
        """A plain DRF app (bench/plain_settings.py: no middleware, no database) served by
        the same gunicorn command and workers, measured like the app's own do-nothing view."""
        port = free_port(besides=self.cfg.http_port)
        self.servers.start_gunicorn(
            self.cfg.workers[0], name="gunicorn_plain", port=port, app="bench.plain_wsgi:application"
        )
        try:
            self.servers.wait_ready()
            for _ in range(6 * self.cfg.workers[0]):
                request("GET", port, "/bench/noop")
            return self.noop(f"http://127.0.0.1:{port}")
        finally:
            self.servers.stop("gunicorn_plain")

    def pipeline(self) -> dict[str, Any]:
        """Every production process on this machine, the live players on /ws/me/, fresh
        unlocks for them open loop at each of the pipeline rates in turn: requests, toasts
        and every process's CPU per unlock."""
        rates = self.cfg.pipeline_rates
        phases = [(f"{rate}/s", rate, rate * self.cfg.pipeline_duration) for rate in rates]
        return {"phases": asyncio.run(self.live_phases(phases))}

    def light(self) -> dict[str, Any]:
        """The light-load tail: a few unlocks at a low rate, each toast's latency."""
        phases = [("light", self.cfg.light_rate, self.cfg.light_unlocks)]
        return asyncio.run(self.live_phases(phases))["light"]

    async def live_phases(self, phases: list[tuple[str, int, int]]) -> dict[str, dict[str, Any]]:
        """Each (name, rate, unlocks) in turn over the same open sockets; each phase's CPU
        window runs until its background work has drained."""
        results = {}
        async with sockets.Listeners(self.cfg.ws_port, self.tokens) as listeners:
            for name, rate, count in phases:
                base = load.take(self.cfg, dataset.LIVE_CURSOR, count)
                wanted = sockets.wanted_pairs(self.live_pairs, base, count)  # raises if the pairs ran out
                window = self.meter.window()
                phase = await sockets.toasts(
                    listeners,
                    self.cfg.http_port,
                    key=self.loaded.key,
                    wanted=wanted,
                    rate=rate,
                    grace_ms=TOAST_GRACE_MS,
                )
                phase["drain_seconds"] = await asyncio.to_thread(self.drained)
                phase["cpu"] = window.stop(unlocks=phase["unlocks_created"])
                phase["sockets"] = len(self.tokens)
                phase["throughput"] = phase["served_per_second"]
                # Lost toasts are a target missed, not a failed request: the table says so.
                phase["errors"] = phase["http"]["errors"] + phase["stray_events"]
                results[name] = phase
        return results

    def read(self, path: str, players: bool, auth: str) -> dict[str, Any]:
        return {
            "rate": self.read_at_rate(path, players, auth),
            "moderate": self.get(
                path, players=players, shape=wrk.MODERATE, seconds=self.cfg.moderate_duration, auth=auth
            ),
            "saturation": self.get(path, players=players, shape=wrk.SATURATION, seconds=self.cfg.duration, auth=auth),
        }

    def feed(self) -> dict[str, Any]:
        """The friends' feed of the feed viewers (each with cfg.feed.friends friends, each
        friend with cfg.feed.unlocks unlocks and more), a random viewer per request. The
        first page, as dashboards and clients read it again and again while nothing new
        happens (kept: docs/feed.md), at the read rate (open loop), then closed loop at
        moderate load and at saturation; and the second page, which the statement reads
        every time, as the first page costs whenever a friend did something new."""
        firsts = self.check_feed()
        auths = ",".join(self.feed_auths)
        second = [FEED_PATH, auths, ",".join(f"?cursor={quote(page['next'])}" for page in firsts)]
        return {
            "rate": self.read_at_rate(FEED_PATH, False, "", auths=self.feed_auths),
            "moderate": self.run_wrk(
                "feed.lua", [FEED_PATH, auths], seconds=self.cfg.moderate_duration, shape=wrk.MODERATE
            ),
            "saturation": self.run_wrk("feed.lua", [FEED_PATH, auths], seconds=self.cfg.duration),
            "later_moderate": self.run_wrk("feed.lua", second, seconds=self.cfg.moderate_duration, shape=wrk.MODERATE),
            "later_saturation": self.run_wrk("feed.lua", second, seconds=self.cfg.duration),
        }

    def check_feed(self) -> list[dict[str, Any]]:
        """The loaded feed is what the section claims to measure: for each viewer, a full
        first page of friends' unlocks among the rest, and a next page. Returns the first
        pages, read once each as an open dashboard would have."""
        connection = http.client.HTTPConnection("127.0.0.1", self.cfg.http_port, timeout=30)
        pages = []
        try:
            for auth in self.feed_auths:
                connection.request("GET", FEED_PATH, headers={"Authorization": auth})
                response = connection.getresponse()
                body = response.read()
                page = json.loads(body) if response.status == 200 else {}
                kinds = {item["kind"] for item in page.get("results", [])}
                if len(page.get("results", [])) < DEFAULT_FEED_PAGE or not page.get("next") or "unlock" not in kinds:
                    raise RuntimeError(f"the feed is not loaded as expected: {response.status} {body[:300]!r}")
                pages.append(page)
        finally:
            connection.close()
        return pages

    def idle_sockets(self) -> dict[str, Any]:
        daphne = self.servers.running["daphne"].pid
        return asyncio.run(sockets.hold_idle(self.cfg.ws_port, self.loaded.game_id, self.cfg.idle_sockets, daphne))

    def live(self) -> dict[str, Any]:
        total = self.cfg.live_rate * self.cfg.rate_duration
        base = load.take(self.cfg, dataset.LIVE_CURSOR, total)
        self.live_pairs.pair(base + total - 1)  # raises if the live players' pairs ran out
        return asyncio.run(
            sockets.unlock_to_socket(
                self.cfg.http_port,
                self.cfg.ws_port,
                key=self.loaded.key,
                tokens=self.tokens,
                pairs=self.live_pairs,
                base=base,
                rate=self.cfg.live_rate,
                seconds=self.cfg.rate_duration,
            )
        )

    def read_at_rate(self, path: str, players: bool, auth: str, *, auths: list[str] | None = None) -> dict[str, Any]:
        """The read at a fixed rate (open loop): the latency a caller sees at that load,
        without wrk's coordinated omission. Random public players, as get.lua picks them;
        with `auths`, each request as one of those callers, at random."""
        rng = random.Random(7919)
        headers = {"Authorization": auth} if auth else {}

        def request_for(i: int) -> bytes:
            n = rng.randint(1, self.cfg.players - self.cfg.live_players)
            n -= n % 10 == 0  # anonymous callers may read only public players
            caller = {"Authorization": rng.choice(auths)} if auths else headers
            return get(path.replace("{player}", dataset.player_id(n)) if players else path, caller)

        rate, seconds = self.cfg.read_rate, self.cfg.rate_duration
        fired = asyncio.run(fire(self.cfg.http_port, rate=rate, seconds=seconds, request_for=request_for))
        return fired.summary(expected_status=200)

    def unlock_rate(self) -> dict[str, Any]:
        rate, seconds = self.cfg.unlock_rate, self.cfg.rate_duration
        base = load.take(self.cfg, dataset.HTTP_CURSOR, rate * seconds)
        self.http_pairs.pair(base + rate * seconds - 1)
        headers = {"Authorization": f"Api-Key {self.loaded.key}", "Content-Type": "application/json"}

        def request_for(i: int) -> bytes:
            n, achievement = self.http_pairs.pair(base + i)
            body = {"player_id": dataset.player_id(n), "achievement": dataset.api_name(achievement)}
            return post("/api/v1/achievements/unlock", json.dumps(body).encode(), headers)

        fired = asyncio.run(fire(self.cfg.http_port, rate=rate, seconds=seconds, request_for=request_for))
        return fired.summary(expected_status=201)

    def sweep(self) -> None:
        """noop and single unlocks at each other worker count, on a restarted gunicorn."""
        entries = [{"workers": self.cfg.workers[0], "noop": self.sections["noop"], "unlock": self.sections["unlock"]}]
        for workers in self.cfg.workers[1:]:
            self.servers.stop("gunicorn")
            self.servers.start_gunicorn(workers)
            self.servers.wait_ready()
            self.warm_up()
            noop = self.section(f"sweep {workers} noop", lambda: self.noop(self.url))
            unlock = self.section(f"sweep {workers} unlock", lambda: self.unlocks(batch=1, seconds=self.cfg.duration))
            entries.append({"workers": workers, "noop": noop, "unlock": unlock})
        self.sections["sweep"] = entries


def failed(message: str) -> dict[str, Any]:
    return {"failed": message, "throughput": 0.0, "errors": 1}


def summary_line(result: dict[str, Any]) -> str:
    if "failed" in result:
        return f"FAILED: {result['failed']}"
    if "saturation" in result:
        return " / ".join(f"{name}: {summary_line(result[name])}" for name in ("rate", "moderate", "saturation"))
    if "single" in result:
        return " / ".join(f"{name}: {summary_line(figures)}" for name, figures in result.items())
    if "phases" in result:
        return " / ".join(f"{name}: {summary_line(f)}" for name, f in result["phases"].items())
    if "members" in result:
        return " / ".join(f"{name}: {summary_line(f)}" for name, f in result.items() if isinstance(f, dict))
    p99 = result.get("p99_ms")
    latency = f", p99 {p99:.1f} ms" if isinstance(p99, int | float) else ""
    return f"{result.get('throughput', 0):,.0f}/s{latency}, errors {result.get('errors', 0)}"


def request(method: str, port: int, path: str, *, body: str = "", headers: dict[str, str] | None = None) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body or None, headers=headers or {})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def start_servers(servers: Servers, cfg: Config, *, relay: bool) -> list[str]:
    """gunicorn, Daphne, a bounded Celery worker, and the outbox relay if the app has one
    (`manage.py relay_outbox`, being written alongside the bench)."""
    servers.start_gunicorn(cfg.workers[0])
    servers.start_daphne()
    servers.start_celery()
    if relay:
        servers.start_relay()
    return list(servers.running)


def log_errors(servers: Servers) -> tuple[dict[str, int], dict[str, list[str]]]:
    """Errors the servers logged while measured (counted before they are stopped, so
    shutdown noise is not counted): tracebacks, ERROR lines, 5xx in the access log.
    Returns the count per server and a few distinct lines of each, to say what they were."""
    counts, samples = {}, {}
    for name, server in servers.running.items():
        text = server.log.read_text(errors="replace") if server.log.exists() else ""
        lines = [line for line in text.splitlines() if LOG_ERROR.search(line) or ACCESS_5XX.search(line)]
        counts[name] = len(lines)
        distinct = {line.split(" ", 3)[-1][:200] for line in lines if "Traceback" not in line}
        samples[name] = sorted(distinct)[:5]
    return counts, samples


@contextmanager
def exclusive(cfg: Config, timeout: float = 900) -> Iterator[None]:
    """Hold the run's database, Redis database and queue for this run alone. Two runs
    sharing any would drop or flush each other's data, or take each other's tasks,
    mid-measurement (two `make bench` on one machine, say): the second waits instead."""
    names = sorted(
        {
            f"db-{load.database_name(cfg.database_url)}",
            "redis-" + re.sub(r"\W", "_", cfg.redis_url),
            "queue-" + re.sub(r"\W", "_", cfg.celery_queue),
        }
    )
    with ExitStack() as held:
        for name in names:
            lock = held.enter_context(open(Path(tempfile.gettempdir()) / f"questboard-bench-{name}.lock", "w"))
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"another bench run holds {name} since {timeout:.0f} s") from None
                    print(f"bench: waiting for another run using {name} ...", flush=True)
                    time.sleep(5)
        yield


def main(argv: list[str] | None = None) -> int:
    cfg = config.from_args(argv)
    missing = [tool for tool in TOOLS if tools.find(tool) is None]
    if missing:
        print(f"bench: missing {', '.join(missing)} (Debian: apt-get install wrk redis-tools)")
        return 3
    raise_file_limit()
    started = datetime.now(UTC)
    print(f"bench: {'smoke' if cfg.smoke else 'full'} run, {cfg.players:,} players, database {cfg.database_url}")
    log_dir = cfg.artifacts / ("bench-smoke-logs" if cfg.smoke else "bench-logs")
    document: dict[str, Any] = {"started_at": started.isoformat(), "smoke": cfg.smoke}
    timer = load.Timer()
    live_ids = [dataset.player_id(n) for n in range(cfg.players - cfg.live_players + 1, cfg.players + 1)]
    # Management commands each spend seconds importing Django: those that do not depend
    # on each other run side by side.
    with exclusive(cfg), Servers(cfg, log_dir) as servers, ThreadPoolExecutor(max_workers=1) as beside:
        commands = beside.submit(management_commands, cfg)
        reused = load.prepare(cfg, timer)
        # The servers boot (seconds of imports each) while the data loads.
        started_servers = start_servers(servers, cfg, relay="relay_outbox" in commands.result())
        loaded = load.populate(cfg, timer, reused=reused)
        viewer_ids = [cfg.feed.viewer_id(v) for v in range(1, cfg.feed.viewers + 1)] if loaded.feed_games else []
        tokens = beside.submit(load.mint_tokens, cfg, live_ids + viewer_ids)
        load.rebuild_index(cfg, loaded, timer)
        document["machine"] = report.machine(cfg)
        with timer.step(f"players' tokens, servers ready ({', '.join(started_servers)})"):
            tokens = tokens.result()
            feed_tokens = [tokens.pop(viewer) for viewer in viewer_ids]
            servers.wait_ready()
        run = Run(cfg, loaded, servers, tokens, feed_tokens)
        sections = run.run_all()
        server_errors, error_samples = log_errors(servers)
        run.deaths += [{"noticed_before": "the end", "what": death} for death in servers.newly_dead()]
    document.update(
        finished_at=datetime.now(UTC).isoformat(),
        config={
            "players": cfg.players,
            "workers": cfg.workers,
            "duration_s": cfg.duration,
            "moderate_duration_s": cfg.moderate_duration,
            "rate_duration_s": cfg.rate_duration,
            "unlock_rate": cfg.unlock_rate,
            "live_rate": cfg.live_rate,
            "pipeline_rates": cfg.pipeline_rates,
            "pipeline_duration_s": cfg.pipeline_duration,
            "light_unlocks": cfg.light_unlocks,
            "light_rate": cfg.light_rate,
            "idle_sockets": cfg.idle_sockets,
            "live_players": cfg.live_players,
            "feed": asdict(cfg.feed),
            "pgbench_seconds": cfg.pgbench_seconds,
            "redis_requests": cfg.redis_requests,
            "database_url": cfg.database_url,
            "redis_url": cfg.redis_url,
            "servers": started_servers,
            "server_env": cfg.server_env,
        },
        load={
            "reused": loaded.reused,
            "players": loaded.players,
            "unlocks_at_start": loaded.unlocks,
            "index_entries": loaded.index_entries,
            "seconds": loaded.timings,
        },
        sections=sections,
        settled_seconds=run.settled,
        server_log_errors=server_errors,
        server_log_error_samples=error_samples,
        server_deaths=run.deaths,
        load_average_at_end=[round(value, 2) for value in os.getloadavg()],
    )
    rows = report.build_rows(cfg, sections)
    cpu_rows = report.cpu_rows(cfg, sections)
    path = report.write(cfg, document, rows, cpu_rows)
    print()
    report.print_table(rows)
    print()
    report.print_cpu_table(cpu_rows)
    print(f"\nsetup seconds: {loaded.timings}")
    if any(server_errors.values()):
        print(f"servers logged errors: {server_errors} (logs in {log_dir})")
        for name, lines in error_samples.items():
            for line in lines:
                print(f"  {name}: {line}")
    print(f"report: {path} ({(datetime.now(UTC) - started).total_seconds():.0f} s in all)")
    for death in run.deaths:
        print(f"server died before {death['noticed_before']}: {death['what']}")
    clean = all(r.errors == 0 for r in rows) and not any(server_errors.values()) and not run.deaths
    return 0 if clean else 2


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        # The servers were stopped on the way out (Servers.__exit__).
        print("bench: interrupted", file=sys.stderr)
        sys.exit(130)
    except (RuntimeError, OSError) as error:
        print(f"bench: {error}", file=sys.stderr)
        sys.exit(1)
