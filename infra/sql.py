"""Small helpers for the few hand-written statements (upserts the ORM cannot express)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.backends.utils import CursorWrapper

# psycopg's own conversion, kept by `_KeptQuery` (no public API lets a caller keep it).
from psycopg._queries import PostgresQuery, _query2pg_nocache

M = TypeVar("M", bound=models.Model)


def table(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def prep(model: type[models.Model], field: str, value: Any) -> Any:
    """A Python value as the database adapter takes it for `model.field`."""
    return model._meta.get_field(field).get_db_prep_value(value, connection, prepared=False)


def to_python(model: type[models.Model], field: str, value: Any) -> Any:
    """A value returned by a raw statement as the ORM would give it (naive datetimes are UTC)."""
    value = model._meta.get_field(field).to_python(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def add_counters(
    model: type[models.Model],
    *,
    keys: tuple[str, ...],
    rows: Sequence[tuple[Any, ...]],
    at: Any,
    insert_extra: dict[str, str] | None = None,
    update_extra: dict[str, str] | None = None,
) -> list[tuple[Any, ...]]:
    """Add (points, count) deltas to a points table keyed by `keys`, as one upsert.

    Each row is ``(*key_values, points, count, extra_params...)``. Nothing is read before it
    is written, so concurrent writers to the same row serialise on its lock and no increment
    is lost. A positive points delta moves `points_reached_at` to `at` (the board
    tie-break). Returns ``(*keys, points, points_reached_at)`` for every row written, as
    Python values.

    Deltas are never negative (an insert of a negative row would break the table's
    non-negative checks before the conflict applies); a revocation lowers rows in place.
    The caller sorts `rows` by key so that concurrent writers lock rows in one order.
    """
    if not rows:
        return []
    if any(row[len(keys)] < 0 or row[len(keys) + 1] < 0 for row in rows):
        raise ValueError("add_counters only adds; lower rows in place instead.")
    insert_extra = insert_extra or {}
    update_extra = update_extra or {}
    name = table(model)
    key_columns = [model._meta.get_field(key).column for key in keys]
    columns = [*key_columns, "points", "achievement_count", "points_reached_at", "updated_at", *insert_extra]
    one = "(" + ", ".join(["%s"] * (len(keys) + 4) + list(insert_extra.values())) + ")"
    params: list[Any] = []
    for row in rows:
        key_values, (points, count), extra = row[: len(keys)], row[len(keys) : len(keys) + 2], row[len(keys) + 2 :]
        params += [prep(model, key, value) for key, value in zip(keys, key_values, strict=True)]
        params += [points, count, prep(model, "updated_at", at) if points > 0 else None]
        params += [prep(model, "updated_at", at), *extra]
    updates = {
        "points": "t.points + excluded.points",
        "achievement_count": "t.achievement_count + excluded.achievement_count",
        "points_reached_at": "CASE WHEN excluded.points > 0 THEN excluded.points_reached_at ELSE t.points_reached_at END",
        "updated_at": "excluded.updated_at",
        **update_extra,
    }
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {name} AS t ({", ".join(columns)})
            VALUES {", ".join([one] * len(rows))}
            ON CONFLICT ({", ".join(key_columns)}) DO UPDATE SET
                {", ".join(f"{column} = {value}" for column, value in updates.items())}
            RETURNING {", ".join(key_columns)}, points, points_reached_at
            """,
            params,
        )
        added = cursor.fetchall()
    fields = [*keys, "points", "points_reached_at"]
    return [tuple(to_python(model, f, v) for f, v in zip(fields, row, strict=True)) for row in added]


class _KeptQuery(PostgresQuery):
    """psycopg's query conversion (``%(name)s`` placeholders to ``$n``, the parameters'
    order), kept per query text for the life of the process.

    psycopg caches it only for statements under 4 KB; the unlock statement is longer, and
    converting its text again cost more Python than sending it (0.5 ms of a 3 ms unlock).
    Only `prepared_cursor` uses this, for the few fixed statements it runs."""

    def convert(self, query: Any, vars: Any) -> None:
        if vars is None:
            super().convert(query, vars)
            return
        self.query, self._want_formats, self._order, self._parts = _converted(
            self._ensure_bytes(query), self._tx.encoding
        )
        self.dump(vars)


# A handful of fixed statements use it: the bound only guards against misuse.
_converted = lru_cache(maxsize=32)(_query2pg_nocache)


@cache
def _preparing_cursor() -> type:
    """The cursor class, made once (the backend's module is importable only once Django
    has its settings)."""
    from django.db.backends.postgresql.base import ServerBindingCursor

    class PreparingCursor(ServerBindingCursor):
        _query_cls = _KeptQuery

        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            return super().execute(query, params, prepare=True, **kwargs)

    return PreparingCursor


def prepared_cursor(using: str = DEFAULT_DB_ALIAS) -> CursorWrapper:
    """A PostgreSQL cursor whose statements the server plans once per connection (a
    prepared statement, server-side binding, and one plan for every run: the connections'
    ``plan_cache_mode``, config/settings.py) instead of on every run: for the unlock's one
    big statement, planning costs more than running. The statement's text is converted once
    per process (`_KeptQuery`), and after its first run only its name and parameters go to
    the server. Logged and wrapped like Django's own cursors, so query counts and error
    mapping see it. For fixed statements only: each distinct text is kept for good.
    `using`: the database alias (a replica's, for a read the router sends there)."""
    db = connections[using]
    db.ensure_connection()
    raw = db.connection
    if raw.prepare_threshold is None:
        # Django turns preparing off for the whole connection (poolers in transaction mode
        # lose prepared statements); only server-binding cursors like this one prepare, and
        # `prepare=True` asks for it on the first run.
        raw.prepare_threshold = 0
    with db.wrap_database_errors:
        return db._prepare_cursor(_preparing_cursor()(raw))


def by_pk(model: type[M], pk: Any, *, using: str = DEFAULT_DB_ALIAS) -> M | None:
    """`model`'s row with this primary key, as the ORM's `get` would load it, or None. A
    prepared statement (`prepared_cursor`) instead of a query compiled per call: for the
    player behind every token, compiling cost more Python than the database spent
    answering. Columns are converted as the ORM converts them (`from_db_value`: an
    encrypted field is decrypted). Read from `using` (the primary unless told)."""
    sql, fields, converters = _by_pk_statement(model)
    with prepared_cursor(using) as db:
        db.execute(sql, [pk])
        row = db.fetchone()
    if row is None:
        return None
    values = [
        value if convert is None else convert(value, None, db.db)
        for value, convert in zip(row, converters, strict=True)
    ]
    return model.from_db(db.db.alias, fields, values)


@cache
def _by_pk_statement(model: type[models.Model]) -> tuple[str, list[str], list[Any]]:
    concrete = model._meta.concrete_fields
    columns = ", ".join(connection.ops.quote_name(field.column) for field in concrete)
    pk = connection.ops.quote_name(model._meta.pk.column)
    sql = f"SELECT {columns} FROM {table(model)} WHERE {pk} = %s"
    return sql, [field.attname for field in concrete], [getattr(field, "from_db_value", None) for field in concrete]
