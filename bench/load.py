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
    # The friends' feed (FEED_SQL).
    "tracker_friendship": {"id", "requester_id", "addressee_id", "status", "created", "accepted_at"},
    "achievements_award": {"id", "player_id", "game_id", "kind", "awarded_at"},
    "leaderboards_season": {
        "id",
        "game_id",
        "name",
        "description",
        "starts_at",
        "ends_at",
        "region",
        "closed_at",
        "created",
    },
    "leaderboards_seasonresult": {
        "id",
        "season_id",
        "player_id",
        "rank",
        "points",
        "achievement_count",
        "region",
        "position",
    },
    "tracker_notification": {"id", "player_id", "kind", "payload", "created", "read_at"},
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


# The friends' feed (bench.dataset.FeedShape), in the order the statements run: its players
# (the pool, then the viewers), each viewer's friends, the pool's unlocks of the feed games
# written in time order (a player's unlocks lie scattered over the table, as years of
# everyone's unlocks leave them), their awards, closed seasons with every pool player's
# final rank (about a quarter in the top ten), and each viewer's rival alerts.
FEED_SQL = {
    "feed players": """
INSERT INTO tracker_player (id, password, last_login, is_superuser, username, first_name, last_name,
    is_staff, is_active, date_joined, email, email_digest, region, privacy, boards_hidden, created)
SELECT (%(feed_prefix)s || lpad(to_hex(n), 12, '0'))::uuid, '!', NULL, false,
    CASE WHEN n <= %(pool)s THEN 'feedfriend' || n ELSE 'feedviewer' || (n - %(pool)s) END, '', '',
    false, true, %(t0)s, '', '', 'eu', CASE WHEN n %% 4 = 0 THEN 'friends' ELSE 'public' END, false, %(t0)s
FROM generate_series(1::bigint, %(pool)s + %(viewers)s) AS n
""",
    "feed friendships": """
INSERT INTO tracker_friendship (requester_id, addressee_id, status, created, accepted_at)
SELECT (%(feed_prefix)s || lpad(to_hex(%(pool)s + v), 12, '0'))::uuid,
    (%(feed_prefix)s || lpad(to_hex(((v - 1) * %(stride)s + k) %% %(pool)s + 1), 12, '0'))::uuid,
    'accepted', %(t0)s, %(t0)s
FROM generate_series(1::bigint, %(viewers)s) AS v CROSS JOIN generate_series(0::bigint, %(friends)s - 1) AS k
""",
    "feed unlocks": """
INSERT INTO achievements_unlock (player_id, achievement_id, game_id, unlocked_at, claimed_at, source, game_key_id)
SELECT (%(feed_prefix)s || lpad(to_hex(f), 12, '0'))::uuid, a.id, a.game_id,
    %(t0)s - ((f * 7919 + a.j * 104729) %% 7776000) * interval '1 second', NULL, 'server', NULL
FROM generate_series(1::bigint, %(pool)s) AS f
CROSS JOIN (
    SELECT id, game_id, row_number() OVER (ORDER BY game_id, api_name) - 1 AS j
    FROM achievements_achievement WHERE game_id = ANY(%(feed_games)s::uuid[])
) AS a
WHERE a.j < %(unlocks)s
ORDER BY 4
""",
    "feed awards": """
INSERT INTO achievements_award (player_id, game_id, kind, awarded_at)
SELECT (%(feed_prefix)s || lpad(to_hex(f), 12, '0'))::uuid, g.id, k.kind,
    %(t0)s - (((f * 3571 + g.n * 7 + k.n) * 3607) %% 7776000) * interval '1 second'
FROM generate_series(1::bigint, %(pool)s) AS f
CROSS JOIN (SELECT id, row_number() OVER (ORDER BY id) AS n FROM tracker_game WHERE id = ANY(%(feed_games)s::uuid[])) AS g
CROSS JOIN (VALUES ('beaten', 1), ('mastered', 2)) AS k(kind, n)
""",
    "feed seasons": """
INSERT INTO leaderboards_season (id, game_id, name, description, starts_at, ends_at, region, closed_at, created)
SELECT gen_random_uuid(), (%(feed_games)s::uuid[])[1], 'Feed Cup ' || s, '',
    %(t0)s - (s * 8 + 7) * interval '1 day', %(t0)s - s * 8 * interval '1 day', '',
    %(t0)s - s * 8 * interval '1 day' + interval '30 seconds', %(t0)s
FROM generate_series(1, %(seasons)s) AS s
""",
    "feed season results": """
INSERT INTO leaderboards_seasonresult (season_id, player_id, rank, points, achievement_count, region, position)
SELECT s.id, (%(feed_prefix)s || lpad(to_hex(f), 12, '0'))::uuid, (f * 7 + s.n) %% 40 + 1,
    1000 - (f * 7 + s.n) %% 40, 10, 'eu', f
FROM (SELECT id, row_number() OVER (ORDER BY starts_at) AS n FROM leaderboards_season
      WHERE game_id = (%(feed_games)s::uuid[])[1]) AS s
CROSS JOIN generate_series(1::bigint, %(pool)s) AS f
""",
    "feed rival alerts": """
INSERT INTO tracker_notification (player_id, kind, payload, created, read_at)
SELECT (%(feed_prefix)s || lpad(to_hex(%(pool)s + v), 12, '0'))::uuid, 'rival',
    jsonb_build_object(
        'game_id', g.id::text, 'game_name', g.name, 'game_slug', g.slug,
        'rival_id', (%(feed_prefix)s || lpad(to_hex(((v - 1) * %(stride)s + i %% %(friends)s) %% %(pool)s + 1), 12, '0')),
        'rival_username', 'feedfriend' || (((v - 1) * %(stride)s + i %% %(friends)s) %% %(pool)s + 1),
        'rival_points', 100 + i, 'your_points', 99 + i),
    %(t0)s - (((v * 131 + i * 3889) * 11) %% 7776000) * interval '1 second', NULL
FROM generate_series(1::bigint, %(viewers)s) AS v CROSS JOIN generate_series(0::bigint, %(alerts)s - 1) AS i
CROSS JOIN (SELECT id, name, slug FROM tracker_game WHERE id = (%(feed_games)s::uuid[])[1]) AS g
""",
}


@dataclass
class Loaded:
    """What the measurements need to know about the data."""

    game_id: str
    key: str
    players: int
    live_players: int
    reused: bool
    feed_games: list[str] = field(default_factory=list)  # empty unless the feed section runs
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
    feed_games = []
    if cfg.runs("feed"):
        with timer.step("import_game of the feed games"):
            feed_games = [
                import_game(cfg, dataset.feed_manifest(g, min(dataset.FEED_SET, cfg.feed.unlocks)))
                for g in range(cfg.feed.games)
            ]
    with connect(cfg.database_url) as conn:
        check_schema(conn)
        if not reused:
            bulk_load(conn, cfg, game_id, feed_games, timer)
        unlocks = conn.execute("SELECT count(*) FROM achievements_unlock").fetchone()[0]
    return Loaded(game_id, key, cfg.players, cfg.live_players, reused, feed_games, timer.timings, unlocks=unlocks)


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
    wanted = {"players": cfg.players, "live_players": cfg.live_players}
    if cfg.runs("feed"):
        wanted["feed_pool"] = cfg.feed.pool
    return all(state.get(name) == value for name, value in wanted.items())


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


def import_game(cfg: Config, manifest: dict[str, Any]) -> str:
    """The game's id, imported through the operator contract (`import_game`)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
        json.dump(manifest, file)
        file.flush()
        return last_line(manage(cfg, "import_game", file.name))


def create_game(cfg: Config) -> tuple[str, str]:
    game_id = import_game(cfg, dataset.manifest())
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


def bulk_load(conn: psycopg.Connection, cfg: Config, game_id: str, feed_games: list[str], timer: Timer) -> None:
    feed = cfg.feed
    params = {
        "prefix": dataset.UUID_PREFIX,
        "players": cfg.players,
        "regions": list(dataset.REGIONS),
        "preloaded": dataset.PRELOADED,
        "game": game_id,
        # Whole seconds: boards break ties by the second a score was reached.
        "t0": datetime.now(UTC).replace(microsecond=0),
        "feed_prefix": dataset.FEED_UUID_PREFIX,
        "feed_games": feed_games,
        "pool": feed.pool,
        "viewers": feed.viewers,
        "friends": feed.friends,
        "stride": feed.stride,
        "unlocks": feed.unlocks,
        "alerts": feed.alerts,
        "seasons": feed.seasons,
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
    statements = {"players": PLAYERS_SQL, "unlocks": UNLOCKS_SQL, "per-game stats": STATS_SQL, "totals": TOTALS_SQL}
    if feed_games:
        statements |= FEED_SQL
    for name, statement in statements.items():
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
        "INSERT INTO bench_state VALUES ('players', %s), ('live_players', %s), ('feed_pool', %s), (%s, 0), (%s, 0)",
        [cfg.players, cfg.live_players, feed.pool if feed_games else 0, dataset.HTTP_CURSOR, dataset.LIVE_CURSOR],
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
