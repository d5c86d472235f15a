"""Named PostgreSQL advisory locks: the one way the project makes work take turns.

A lock is named by a string (``"session:<player>:<game>"``, ``"analytics-run:<game>"``),
hashed to PostgreSQL's 64-bit key space with ``hashtextextended(name, 0)``, so every
caller and every process computes the same key from the same name.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection as default_connection
from django.db.backends.base.base import BaseDatabaseWrapper

KEY = "hashtextextended(%s, 0)"


def lock_until_commit(name: str, *, wait: bool = True) -> bool:
    """Take the lock `name` until the current transaction ends (call it inside
    ``transaction.atomic()``). Waiting (the default), it returns True once taken; with
    ``wait=False`` it returns at once whether it was taken (False: someone holds it)."""
    function = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    with default_connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}({KEY})", [name])
        taken = cursor.fetchone()[0]
    return True if wait else bool(taken)


@contextmanager
def hold_if_free(name: str, *, connection: BaseDatabaseWrapper | None = None) -> Iterator[bool]:
    """Whether the lock `name` was free, tried without waiting and held (across
    transactions, for this database session) until the block ends. `connection`: another
    database session than the default one, as a test holding the lock for another process."""
    db = connection or default_connection
    with db.cursor() as cursor:
        cursor.execute(f"SELECT pg_try_advisory_lock({KEY})", [name])
        mine = bool(cursor.fetchone()[0])
    try:
        yield mine
    finally:
        if mine:
            with db.cursor() as cursor:
                cursor.execute(f"SELECT pg_advisory_unlock({KEY})", [name])
