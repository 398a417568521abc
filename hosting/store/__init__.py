"""The DuckDB store: one file under the state directory, migrated by named SQL files.

DuckDB lets one process hold a database file for writing at a time. The agent, `meter
import`, `invoice run` and the CLI's reads therefore open the file for the shortest time
they can and retry, with a bounded back-off, while another process holds the lock.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb

from hosting.errors import StoreError

LOCK_WAIT_SECONDS = 30.0


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflicting" in text or "could not set" in text)


def migrations() -> list[tuple[str, str]]:
    """(name, sql) of every migration shipped with the package, in name order."""
    folder = resources.files("hosting.store").joinpath("migrations")
    found = [
        (entry.name.removesuffix(".sql"), entry.read_text())
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found)


@contextmanager
def connect(
    path: Path, *, read_only: bool = False, wait: float = LOCK_WAIT_SECONDS
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the store (creating and migrating it when needed) and close it afterwards."""
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait
    delay = 0.02
    while True:
        try:
            if read_only and not path.exists():
                read_only = False  # nothing to read yet: create it
            conn = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.Error as exc:
            if not _is_lock_error(exc) or time.monotonic() > deadline:
                raise StoreError(
                    f"cannot open the store {path}: {exc}",
                    "another hosting process holds it; wait for it or stop it",
                ) from None
            time.sleep(delay + random.uniform(0, delay))
            delay = min(delay * 2, 0.5)
    try:
        if not read_only:
            migrate(conn)
        yield conn
    finally:
        conn.close()


def migrate(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply every migration not yet recorded; returns the names applied."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " name VARCHAR PRIMARY KEY, applied_at TIMESTAMP DEFAULT (now()::TIMESTAMP))"
    )
    done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations").fetchall()}
    applied = []
    for name, sql in migrations():
        if name in done:
            continue
        with transaction(conn):
            conn.execute(sql)
            conn.execute("INSERT INTO schema_migrations (name) VALUES (?)", [name])
        applied.append(name)
    return applied


def rows_as_dicts(cursor: Any) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All or nothing: commit when the block ends, roll back when it raises."""
    conn.execute("BEGIN TRANSACTION")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
