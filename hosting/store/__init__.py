"""The DuckDB store: one file under the state directory, migrated by named SQL files.

DuckDB lets one process hold a database file for writing at a time. The agent, `meter
import`, `invoice run` and the CLI's reads therefore open the file for the shortest time
they can and retry, with a bounded back-off, while another process holds the lock.

Inside one process the threads take turns in the same way: a connection holds the file's
gate until it closes. DuckDB itself would let two threads write at once, and their
read-then-write steps (a domain added by two threads, a migration run twice) then conflict.

Migrations run once per file and process, before the store is first used, under that gate
and a file lock beside the store, so two processes opening a fresh store at once do not both
run them.

A file that will not open or read back (truncated, corrupted, from a newer DuckDB or a newer
hosting) is a `DamagedStoreError` naming the newest snapshot and the command that restores
it; a full disk is its own error. Neither is waited for, and no damaged file is ever replaced
by a new empty one (see `damage`); nor is a missing one while snapshots of it exist.
"""

from __future__ import annotations

import fcntl
import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb

from hosting.errors import StoreError
from hosting.store import damage, snapfiles
from hosting.store.damage import BUSY_HINT, DamagedStoreError

__all__ = ["BUSY_HINT", "DamagedStoreError", "connect", "migrate", "migrations", "transaction"]

LOCK_WAIT_SECONDS = 30.0

# Files this process has seen fully migrated, by (path, device, inode): a store deleted and
# created again under the same name is a new file and is migrated again.
_migrated: set[tuple[str, int, int]] = set()
_gates: dict[str, threading.RLock] = {}
_gates_guard = threading.Lock()
_held = threading.local()  # .writing: paths this thread has open read-write, with depth
# .turns: how deep this thread is in each path's gate (more than 1: a connection is open)


def migrations() -> list[tuple[str, str]]:
    """(name, sql) of every migration shipped with the package, in name order."""
    folder = resources.files("hosting.store").joinpath("migrations")
    found = [
        (entry.name.removesuffix(".sql"), entry.read_text())
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found)


class _Backoff:
    """Bounded, jittered waiting for a lock someone else holds."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.delay = 0.02

    def expired(self) -> bool:
        return time.monotonic() > self.deadline

    def sleep(self) -> None:
        time.sleep(self.delay + random.uniform(0, self.delay))
        self.delay = min(self.delay * 2, 0.5)


_busy = damage.busy


def _open(path: Path, read_only: bool, deadline: float) -> duckdb.DuckDBPyConnection:
    """Wait only for a lock; a damaged file or a full disk fails at once."""
    backoff = _Backoff(deadline)
    while True:
        try:
            conn = duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as exc:
            if damage.is_lock_error(exc) and not backoff.expired():
                backoff.sleep()
                continue
            raise (damage.from_exception(path, exc) or _busy(path, exc)) from None
        turns: dict[str, int] = _held.__dict__.setdefault("turns", {})
        if turns.get(str(path), 0) > 1:
            return conn  # inside an open connection, whose blocks may not be written yet
        try:
            why = damage.truncation(conn, path)
        except BaseException:
            conn.close()
            raise
        if why is not None:
            conn.close()
            raise damage.damaged(path, why)
        return conn


@contextmanager
def _gate(path: Path, deadline: float) -> Iterator[None]:
    """This process's turn at the file: one thread at a time, re-entrant for that thread."""
    with _gates_guard:
        gate = _gates.setdefault(str(path), threading.RLock())
    if not gate.acquire(timeout=max(0.0, deadline - time.monotonic())):
        raise _busy(path, "timed out waiting for another thread of this process")
    turns: dict[str, int] = _held.__dict__.setdefault("turns", {})
    turns[str(path)] = turns.get(str(path), 0) + 1
    try:
        yield
    finally:
        turns[str(path)] -= 1
        gate.release()


@contextmanager
def _file_lock(path: Path, deadline: float) -> Iterator[None]:
    """Across processes. Never deleted: removing it lets two processes lock two files."""
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        backoff = _Backoff(deadline)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if backoff.expired():
                    raise _busy(path, "timed out waiting for another process to migrate") from None
                backoff.sleep()
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _identity(path: Path) -> tuple[str, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (str(path), st.st_dev, st.st_ino)


def _ensure_migrated(path: Path, deadline: float) -> None:
    """Called holding the gate."""
    if _identity(path) in _migrated:
        return
    with _file_lock(path, deadline):
        conn = _open(path, False, deadline)
        try:
            unknown = unknown_migrations(conn)
            if unknown:
                raise damage.newer_schema(path, unknown)
            migrate(conn)
        except duckdb.Error as exc:
            known = damage.from_exception(path, exc)
            raise (known or _migration_failed(path, exc)) from None
        finally:
            conn.close()
    identity = _identity(path)
    assert identity is not None  # duckdb.connect created it
    _migrated.add(identity)


def _migration_failed(path: Path, exc: BaseException) -> StoreError:
    return StoreError(
        f"migrating the store {path} failed: {damage.first_line(exc)}",
        "`hosting store check` shows which migrations are recorded",
    )


def _require_current(conn: duckdb.DuckDBPyConnection, path: Path) -> None:
    recorded: set[str] = set()
    with suppress(duckdb.CatalogException):
        recorded = {r[0] for r in conn.execute("SELECT name FROM schema_migrations").fetchall()}
    pending = [name for name, _ in migrations() if name not in recorded]
    if pending:
        conn.close()
        raise StoreError(
            f"the store {path} needs migrations ({', '.join(pending)}) and is read-only here",
            "run any command with write access to the state directory once (`hosting store "
            "check`), then read it again",
        )


def unknown_migrations(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Migrations recorded in the file that this version does not ship: a newer hosting's."""
    has_table = conn.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'schema_migrations'"
    ).fetchone()
    if not has_table or not has_table[0]:
        return []
    shipped = {name for name, _ in migrations()}
    recorded = [r[0] for r in conn.execute("SELECT name FROM schema_migrations").fetchall()]
    return sorted(set(recorded) - shipped)


@contextmanager
def connect(
    path: Path, *, read_only: bool = False, wait: float = LOCK_WAIT_SECONDS
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the store (creating and migrating it when needed) and close it afterwards.

    DuckDB errors inside the block that are about the file (damage, a full disk) leave as
    one StoreError naming it; the others (constraints, queries) reach the caller unchanged.
    """
    path = path.absolute()
    deadline = time.monotonic() + wait
    writing: dict[str, int] = _held.__dict__.setdefault("writing", {})
    key = str(path)
    if writing.get(key):
        read_only = False  # DuckDB refuses both modes at once in a process; reads work either way
    with _gate(path, deadline):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists() and snapfiles.newest(path) is not None:
                raise damage.missing(path)
            if read_only and path.exists() and not os.access(path.parent, os.W_OK):
                # A reader without write access (a preview's read-only state credential)
                # can neither lock nor migrate: it reads a store that needs neither.
                conn = _open(path, True, deadline)
                _require_current(conn, path)
            else:
                _ensure_migrated(path, deadline)
                conn = _open(path, read_only, deadline)
        except (duckdb.Error, OSError) as exc:
            raise (damage.from_exception(path, exc) or exc) from None
        if not read_only:
            writing[key] = writing.get(key, 0) + 1
        try:
            yield conn
        except duckdb.Error as exc:  # not OSError: the block's own files are not the store
            known = damage.from_exception(path, exc, opening=False)
            if known is None:
                raise
            raise known from None
        finally:
            if not read_only:
                writing[key] -= 1
            conn.close()


def migrate(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply every migration not yet recorded; returns the names applied.

    Idempotent, but not safe to run twice at once on one file: `connect` serialises it.
    """
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
        # A COMMIT that failed (a full disk) has already ended the transaction.
        with suppress(duckdb.Error):
            conn.execute("ROLLBACK")
        raise
