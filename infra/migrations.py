"""Operations shared by migrations."""

from __future__ import annotations

from django.db import migrations
from django.db.models import Field


def unindex_foreign_keys(
    model_name: str, table: str, fields: dict[str, tuple[Field, list[str]]]
) -> migrations.SeparateDatabaseAndState:
    """Stop indexing foreign keys that a composite index already leads with.

    Django's own AlterField(db_index=False) drops and re-adds each key's constraint, and
    re-adding it checks every row under a lock: on a table of millions of unlocks, minutes
    of refused writes. Only the indexes go here (by the names Django gave them), the
    constraints stay. `fields`: name → (the field as it is now, the indexes to drop).
    """
    drops = [name for _, names in fields.values() for name in names]
    columns = {name: f"{field_name}_id" for field_name, (_, names) in fields.items() for name in names}
    return migrations.SeparateDatabaseAndState(
        state_operations=[
            migrations.AlterField(model_name=model_name, name=name, field=field) for name, (field, _) in fields.items()
        ],
        database_operations=[
            migrations.RunSQL(
                sql=[f'DROP INDEX IF EXISTS "{name}"' for name in drops],
                reverse_sql=[
                    f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ("{columns[name]}"'
                    + (" varchar_pattern_ops)" if name.endswith("_like") else ")")
                    for name in drops
                ],
            )
        ],
    )
