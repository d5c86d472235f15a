"""The unlock statement's text (achievements/unlock.sql) against the models it writes: a
renamed table or column fails here, by name, instead of on the first unlock in production."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from django.apps import apps
from django.db import connection

from achievements import unlock_sql
from infra import outbox
from tests.helpers import give

SQL = unlock_sql.STATEMENT
CTES = re.findall(r"^(\w+) AS \($", SQL, flags=re.MULTILINE)


def tables_of_models() -> dict[str, set[str]]:
    """Every model's table and its columns."""
    return {
        model._meta.db_table: {f.column for f in model._meta.concrete_fields}
        for model in apps.get_models(include_auto_created=True)
    }


def test_every_table_the_statement_names_is_a_models_table() -> None:
    named = {name for _, name in re.findall(r"\b(FROM|JOIN|INTO|(?<!DO )UPDATE)\s+(\w+)", SQL)}
    unknown = named - set(tables_of_models()) - set(CTES) - {"unnest"}

    assert unknown == set()
    assert named & set(tables_of_models()) >= {
        "achievements_unlock",
        "achievements_achievement",
        "tracker_player",
        "tracker_game",
        "stats_playergamestats",
        "stats_playertotals",
        "leaderboards_season",
        "leaderboards_season_achievements",
        "leaderboards_seasonstanding",
        "tracker_outboxevent",
        "achievements_award",
    }


def test_every_column_the_statement_inserts_is_a_column_of_its_table() -> None:
    models = tables_of_models()
    inserts = re.findall(r"INSERT INTO (\w+)(?: AS \w+)?\s*\(([^)]*)\)", SQL)

    assert len(inserts) == 6
    for table, columns in inserts:
        assert {c.strip() for c in columns.split(",")} <= models[table], table


def test_every_column_read_through_an_alias_is_a_column_of_its_table() -> None:
    models = tables_of_models()
    aliases = dict(re.findall(r"\b(?:FROM|JOIN)\s+(\w+)\s+(?:AS\s+)?([a-z])\b", SQL))
    by_alias = {alias: table for table, alias in aliases.items() if table in models}
    checked = 0
    for alias, column in set(re.findall(r"\b([a-z])\.(\w+)\b", SQL)):
        if alias in by_alias:
            assert column in models[by_alias[alias]], f"{alias}.{column} ({by_alias[alias]})"
            checked += 1
    assert checked >= 10  # p.is_active, a.points, s.starts_at, c.achievement_id, g.achievement_count, ...


def test_each_step_of_the_statement_says_which_it_is() -> None:
    for cte in CTES:
        before = SQL[: SQL.index(f"\n{cte} AS (")].rstrip().splitlines()[-1].strip()
        assert before.startswith("-- "), cte


def test_the_reply_names_the_columns_the_writer_reads() -> None:
    reply = SQL[SQL.rindex("\nSELECT") :]
    named = re.findall(r"\) AS (\w+)", reply)

    assert named == [f.name for f in dataclasses.fields(unlock_sql.Result)]


def test_the_outbox_row_has_the_fields_of_its_payload() -> None:
    outbox_step = SQL[SQL.index("\noutbox AS (") : SQL.rindex("\nSELECT")]
    keys = set(re.findall(r"'(\w+)', ", outbox_step))

    assert set(outbox.UnlocksPayload.__annotations__) <= keys
    assert set(outbox.Unlocked.__annotations__) <= keys
    assert set(outbox.RiseItem.__annotations__) <= keys
    passed_step = SQL[SQL.index("\npassed AS (") : SQL.index("\noutbox AS (")]
    assert set(outbox.PassedItem.__annotations__) <= set(re.findall(r"'(\w+)', ", passed_step))
    awards = outbox_step[outbox_step.index("'awards', ") :]
    assert set(outbox.AwardItem.__annotations__) <= set(re.findall(r"'(\w+)', ", awards))


def test_awards_are_judged_from_the_rows_this_statement_changed_and_the_games_counts() -> None:
    """The award step reads no table of unlocks: the per-game counters the upsert returns and
    the game's own counts decide it, for the (player, game) rows the statement changed."""
    awarded = SQL[SQL.index("\nawarded AS (") : SQL.index("\ntotal_new AS (")]

    assert "achievements_unlock" not in awarded
    assert "FROM game_rows r" in awarded
    returned = SQL[SQL.index("\ngame_rows AS (") : SQL.index("\nawarded AS (")].rsplit("RETURNING", 1)[1]
    assert {"achievement_count", "progression_count", "win_condition_count"} <= set(re.findall(r"\w+", returned))
    assert "ON CONFLICT (player_id, game_id, kind) DO NOTHING" in awarded


def test_every_outbox_kind_has_a_named_payload() -> None:
    from django.conf import settings

    assert set(outbox.PAYLOADS) == set(settings.OUTBOX_HANDLERS)


def test_single_unlocks_run_the_statement_with_its_one_plan_not_a_plan_each(alice: Any, bob: Any, game: Any) -> None:
    """Planning the statement for one unlock cost twice what running it did; every run after
    the first uses the plan made once per connection (config/settings.py, docs/benchmarks.md)."""
    before = plans_of_the_statement()
    for player in (alice, bob):
        for one in game.achievements.order_by("api_name")[:3]:
            give(player, one)
    generic, custom = plans_of_the_statement()

    assert (generic - before[0], custom - before[1]) == (6, 0)


def plans_of_the_statement() -> tuple[int, int]:
    """(generic, custom) plans this connection has run the unlock statement with so far."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE %s",
            ["%INSERT INTO achievements_unlock%"],
        )
        return cursor.fetchone() or (0, 0)
