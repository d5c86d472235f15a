"""Scale data, fast: a fresh database, the app's own schema and game, then players, unlocks
and stats written by set-based SQL (INSERT ... SELECT over generate_series), and the rank
index rebuilt by the app's own command.

The game and its key come through the operator contract (`import_game`, `create_game_key`);
the bulk rows go straight into the tables, consistent by construction: each player's
stats are aggregated from the unlocks just written, exactly as the unlock path keeps them.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
import redis
from psycopg import sql

from bench import dataset
from bench.config import BENCH_REQUESTS_PER_MINUTE, Config
from bench.servers import last_line, manage

# Columns the loader fills, per table. A NOT NULL column outside these lists, without a
# database default, would make the insert fail obscurely: `check_schema` names it instead.
FILLED = {
    "tracker_player": {
        "id",
        "password",
        "last_login",
        "is_superuser",
        "username",
        "first_name",
        "last_name",
        "is_staff",
        "is_active",
        "date_joined",
        "email",
        "email_digest",
        "region",
        "privacy",
        "boards_hidden",
        "created",
    },
    "achievements_unlock": {"id", "player_id", "achievement_id", "game_id", "unlocked_at", "source"},
    "stats_playergamestats": {
        "id",
        "player_id",
        "game_id",
        "points",
        "achievement_count",
        "completion",
        "points_reached_at",
        "playtime_seconds",
        "weighted_score",
        "first_activity",
        "last_activity",
        "updated_at",
    },
    "stats_playertotals": {
        "player_id",
        "points",
        "achievement_count",
        "points_reached_at",
        "weighted_score",
        "updated_at",
    },
}

PLAYERS_SQL = """
INSERT INTO tracker_player (id, password, last_login, is_superuser, username, first_name, last_name,
    is_staff, is_active, date_joined, email, email_digest, region, privacy, boards_hidden, created)
SELECT (%(prefix)s || lpad(to_hex(n), 12, '0'))::uuid, '!', NULL, false, 'bench' || n, '', '',
    false, true, %(t0)s, '', '', (%(regions)s::text[])[n %% 6 + 1],
    CASE WHEN n %% 20 = 0 THEN 'private' WHEN n %% 20 = 10 THEN 'friends' ELSE 'public' END,
    false, %(t0)s
FROM generate_series(1::bigint, %(players)s) AS n
"""

# Player n gets 1 + n % 5 unlocks: achievement (7n + 10j) % 50 for j = 0.. (distinct, as
# 10j < 50), the last one at a time spread over 90 days, each earlier one a day before.
UNLOCKS_SQL = """
INSERT INTO achievements_unlock (player_id, achievement_id, game_id, unlocked_at, claimed_at, source, game_key_id)
SELECT (%(prefix)s || lpad(to_hex(n), 12, '0'))::uuid, a.id, a.game_id,
    %(t0)s - ((n * 7919) %% 7776000) * interval '1 second' - (n %% 5 - j) * interval '1 day',
    NULL, 'server', NULL
FROM generate_series(1::bigint, %(players)s) AS n
CROSS JOIN LATERAL generate_series(0::bigint, n %% 5) AS j
JOIN achievements_achievement a
    ON a.game_id = %(game)s AND a.api_name = 'a' || lpad(((7 * n + 10 * j) %% %(preloaded)s)::text, 3, '0')
"""

# The same rules as the unlock path: points and count summed, completion over the game's
# whole set, points reached when the last unlock happened.
STATS_SQL = """
INSERT INTO stats_playergamestats (player_id, game_id, points, achievement_count, completion,
    points_reached_at, playtime_seconds, weighted_score, first_activity, last_activity, updated_at)
SELECT u.player_id, u.game_id, sum(a.points), count(*), 100.0 * count(*) / g.achievement_count,
    max(u.unlocked_at), 0, 0, min(u.unlocked_at), max(u.unlocked_at), %(t0)s
FROM achievements_unlock u
JOIN achievements_achievement a ON a.id = u.achievement_id
JOIN tracker_game g ON g.id = u.game_id
WHERE u.game_id = %(game)s
GROUP BY u.player_id, u.game_id, g.achievement_count
"""

TOTALS_SQL = """
INSERT INTO stats_playertotals (player_id, points, achievement_count, points_reached_at, weighted_score, updated_at)
SELECT player_id, sum(points), sum(achievement_count), max(points_reached_at), 0, %(t0)s
FROM stats_playergamestats
GROUP BY player_id
"""


@dataclass
class Loaded:
    """What the measurements need to know about the data."""

    game_id: str
    key: str
    players: int
    live_players: int
    reused: bool
    timings: dict[str, float] = field(default_factory=dict)
    index_entries: int = 0
    unlocks: int = 0


class Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        print(f"  load: {name} ...", flush=True)
        yield
        self.timings[name] = round(time.perf_counter() - started, 2)
        print(f"  load: {name} took {self.timings[name]:.1f} s", flush=True)


def connect(url: str, **kwargs: Any) -> psycopg.Connection:
    return psycopg.connect(url, connect_timeout=5, **kwargs)


def database_name(url: str) -> str:
    return psycopg.conninfo.conninfo_to_dict(url)["dbname"]


def maintenance_url(url: str) -> str:
    """The same server's `postgres` database, to drop and create the bench's from."""
    params = psycopg.conninfo.conninfo_to_dict(url)
    params["dbname"] = "postgres"
    return psycopg.conninfo.make_conninfo(**params)


def prepare(cfg: Config, timer: Timer) -> bool:
    """The database and its schema, so the servers can start; returns whether the loaded
    data of an earlier run is kept (--reuse with the same scale)."""
    reused = cfg.reuse and already_loaded(cfg)
    if not reused:
        with timer.step("create database"):
            recreate_database(cfg.database_url)
    with timer.step("migrate"):
        manage(cfg, "migrate", "--noinput", "-v0")
    return reused


def populate(cfg: Config, timer: Timer, *, reused: bool) -> Loaded:
    """The game and its key through the operator commands, then the bulk rows."""
    with timer.step("import_game and create_game_key"):
        game_id, key = create_game(cfg)
    with connect(cfg.database_url) as conn:
        check_schema(conn)
        if not reused:
            bulk_load(conn, cfg, game_id, timer)
        unlocks = conn.execute("SELECT count(*) FROM achievements_unlock").fetchone()[0]
    return Loaded(game_id, key, cfg.players, cfg.live_players, reused, timer.timings, unlocks=unlocks)


def rebuild_index(cfg: Config, loaded: Loaded, timer: Timer) -> None:
    """Redis emptied, then the rank index rebuilt from PostgreSQL by the app's own command."""
    with timer.step("rebuild rank index"):
        redis.Redis.from_url(cfg.redis_url).flushdb()
        manage(cfg, "rebuild_leaderboards", timeout=1800)
    loaded.index_entries = redis.Redis.from_url(cfg.redis_url).zcard(board_key(loaded.game_id))


def board_key(game_id: str) -> str:
    """The game's all-regions board in Redis (checked after the rebuild, used by the
    redis-benchmark ceiling); a missing key means reads would fall back to SQL."""
    return f"{{qb:lb}}:game:{game_id}"  # leaderboards.boards.Board.game(game_id).key


def already_loaded(cfg: Config) -> bool:
    """Whether --reuse can keep the database: same players and live players as asked."""
    try:
        with connect(cfg.database_url) as conn:
            state = dict(conn.execute("SELECT name, value FROM bench_state").fetchall())
    except psycopg.Error:
        return False
    return state.get("players") == cfg.players and state.get("live_players") == cfg.live_players


def recreate_database(url: str) -> None:
    name = database_name(url)
    with connect(maintenance_url(url), autocommit=True) as conn:
        # Connections left by the servers of a run that was killed would block the drop.
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        )
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def create_game(cfg: Config) -> tuple[str, str]:
    with tempfile.NamedTemporaryFile("w", suffix=".json") as manifest:
        json.dump(dataset.manifest(), manifest)
        manifest.flush()
        game_id = last_line(manage(cfg, "import_game", manifest.name))
    key = last_line(
        manage(
            cfg,
            "create_game_key",
            dataset.GAME_SLUG,
            "--name",
            "bench",
            "--requests-per-minute",
            str(BENCH_REQUESTS_PER_MINUTE),
        )
    )
    return game_id, key


def check_schema(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        """
        SELECT table_name, column_name FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name = ANY(%s)
          AND is_nullable = 'NO' AND column_default IS NULL AND is_identity = 'NO'
        """,
        [list(FILLED)],
    ).fetchall()
    unknown = [f"{table}.{column}" for table, column in rows if column not in FILLED[table]]
    if unknown:
        raise RuntimeError(f"bench/load.py does not fill these NOT NULL columns; teach it: {', '.join(unknown)}")


def bulk_load(conn: psycopg.Connection, cfg: Config, game_id: str, timer: Timer) -> None:
    params = {
        "prefix": dataset.UUID_PREFIX,
        "players": cfg.players,
        "regions": list(dataset.REGIONS),
        "preloaded": dataset.PRELOADED,
        "game": game_id,
        # Whole seconds: boards break ties by the second a score was reached.
        "t0": datetime.now(UTC).replace(microsecond=0),
    }
    # Every row is consistent by construction, so the foreign-key triggers (one lookup per
    # row and key) are skipped for this session: the load is several times faster.
    conn.execute("SET session_replication_role = replica")
    conn.execute("SET synchronous_commit = off")
    conn.execute("SET work_mem = '256MB'")
    conn.execute("SET maintenance_work_mem = '512MB'")
    # Maintaining nine indexes row by row is most of an unlock insert's cost; built once
    # afterwards, by sorting, they cost a fraction. Constraint indexes stay (they check).
    secondary = conn.execute(
        """
        SELECT indexname, indexdef FROM pg_indexes i
        WHERE schemaname = 'public' AND tablename = ANY(%s) AND NOT EXISTS (
            SELECT 1 FROM pg_constraint c WHERE c.conindid = format('%%I.%%I', i.schemaname, i.indexname)::regclass
        )
        """,
        [list(FILLED)],
    ).fetchall()
    for name, _ in secondary:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    for name, statement in (
        ("players", PLAYERS_SQL),
        ("unlocks", UNLOCKS_SQL),
        ("per-game stats", STATS_SQL),
        ("totals", TOTALS_SQL),
    ):
        with timer.step(name):
            conn.execute(statement, params)
    with timer.step("indexes"):
        for _, definition in secondary:
            conn.execute(definition)
    conn.commit()
    conn.execute("SET session_replication_role = origin")
    # The harness's own bookkeeping: what was loaded, and the pair cursors (bench.dataset).
    conn.execute("CREATE TABLE bench_state (name text PRIMARY KEY, value bigint NOT NULL)")
    conn.execute(
        "INSERT INTO bench_state VALUES ('players', %s), ('live_players', %s), (%s, 0), (%s, 0)",
        [cfg.players, cfg.live_players, dataset.HTTP_CURSOR, dataset.LIVE_CURSOR],
    )
    conn.commit()
    with timer.step("vacuum analyze"):
        # Fresh statistics and visibility maps: the planner and index-only scans see the
        # tables as a long-running deployment's would be.
        conn.autocommit = True
        for table in FILLED:
            conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))
        conn.autocommit = False


def take(cfg: Config, cursor: str, count: int) -> int:
    """Reserve `count` sequence numbers of a pair cursor; returns the first."""
    with connect(cfg.database_url) as conn:
        row = conn.execute(
            "UPDATE bench_state SET value = value + %s WHERE name = %s RETURNING value - %s", [count, cursor, count]
        ).fetchone()
    return int(row[0])


def advance_to(cfg: Config, cursor: str, value: int) -> None:
    """Move a cursor past sequence numbers used by a run whose count was known only after."""
    with connect(cfg.database_url) as conn:
        conn.execute("UPDATE bench_state SET value = greatest(value, %s) WHERE name = %s", [value, cursor])


def position(cfg: Config, cursor: str) -> int:
    with connect(cfg.database_url) as conn:
        return int(conn.execute("SELECT value FROM bench_state WHERE name = %s", [cursor]).fetchone()[0])


def mint_tokens(cfg: Config, player_ids: list[str]) -> dict[str, str]:
    """Access tokens for players, minted by the app (same SECRET_KEY as the servers)."""
    code = (
        "import json, sys\n"
        "from rest_framework_simplejwt.tokens import RefreshToken\n"
        "from tracker.models import Player\n"
        f"ids = {player_ids!r}\n"
        "players = Player.objects.in_bulk(ids)\n"
        "tokens = {str(p.pk): str(RefreshToken.for_user(p).access_token) for p in players.values()}\n"
        "print(json.dumps(tokens))\n"
    )
    return json.loads(last_line(manage(cfg, "shell", "-c", code)))
