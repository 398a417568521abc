"""Telling a damaged store from a busy one or a full disk, and saying the way back.

DuckDB reports a lock held by another process, a file that is not a database, a truncated
file and a full disk all as IO errors. Only the first is worth waiting for. A damaged store
gets one error that names the file, the newest snapshot and the exact command to restore it;
nothing here ever replaces the file.

A truncated file opens: DuckDB reads blocks only when a query needs them, so a store cut in
half answers some queries and fails others. `truncation` compares the file's size with the
blocks DuckDB counts in use, at every open.
"""

from __future__ import annotations

import errno
from pathlib import Path

import duckdb

from hosting.errors import StoreError
from hosting.store import snapfiles

HEADER = 4096  # the main header, then two database headers, each this size
BUSY_HINT = "another hosting process (or thread) holds it; wait for it or stop it"
_DAMAGE_WORDS = (
    "not a valid duckdb",
    "could not read enough bytes",
    "corrupt",
    "computed checksum",
    "storage version",
    "newer version",
    "deserializ",
)


class DamagedStoreError(StoreError):
    """The store file will not open or read back: restore a snapshot."""


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    for prefix in ("IO Error: ", "Serialization Error: ", "TransactionContext Error: "):
        line = line.removeprefix(prefix)
    return line


def is_lock_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflicting" in text or "could not set" in text)


def is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    return "no space left on device" in str(exc).lower()


def is_damage(exc: BaseException) -> bool:
    if isinstance(exc, duckdb.SerializationException):
        return True
    text = str(exc).lower()
    return any(word in text for word in _DAMAGE_WORDS)


def busy(path: Path, why: object) -> StoreError:
    return StoreError(f"cannot open the store {path}: {why}", BUSY_HINT)


def disk_full(path: Path) -> StoreError:
    return StoreError(
        f"cannot write {path}: no space left on device; nothing was written",
        f"free space on the filesystem holding {path.parent}, then run the command again",
    )


def restore_hint(store_path: Path, *, aside: bool = True) -> str:
    """The way back: the newest snapshot and the exact command that restores it."""
    snap = snapfiles.newest(store_path)
    if snap is None:
        return (
            f"there is no snapshot in {snapfiles.snapshot_dir(store_path)}; keep the file for "
            "recovery: hosting will not replace it with an empty store"
        )
    state_dir = store_path.parent
    command = f"`hosting --state-dir {state_dir} store restore {snap.name} --yes`"
    kept = ", which keeps the damaged file aside" if aside else ""
    return (
        f"the newest snapshot is {snap.path} (taken {snap.taken:%Y-%m-%d %H:%M} UTC); restore "
        f"it with {command}{kept}"
    )


def damaged(store_path: Path, why: str) -> DamagedStoreError:
    return DamagedStoreError(
        f"the store {store_path} cannot be read: {why}", restore_hint(store_path)
    )


def missing(store_path: Path) -> DamagedStoreError:
    return DamagedStoreError(
        f"the store {store_path} is missing, but snapshots of it exist; hosting will not start "
        "an empty one in its place (its invoice numbers would start again at 1)",
        restore_hint(store_path, aside=False),
    )


def newer_schema(store_path: Path, unknown: list[str]) -> DamagedStoreError:
    return DamagedStoreError(
        f"the store {store_path} was written by a newer hosting (migrations this version does "
        f"not know: {', '.join(unknown)}); upgrade hosting, or go back to a snapshot",
        restore_hint(store_path),
    )


def from_exception(
    store_path: Path, exc: BaseException, *, opening: bool = True
) -> StoreError | None:
    """The one StoreError for a DuckDB or OS failure at the store, or None when the failure is
    the caller's to handle (a constraint, a bad query): those are not about the file. Past
    the opening, another IO error may be about a file a query reads (an import), not the
    store, and is left alone."""
    if is_lock_error(exc):
        return busy(store_path, exc)
    if is_disk_full(exc):
        return disk_full(store_path)
    if is_damage(exc):
        why = first_line(exc)
        if "newer version" in str(exc).lower():
            why += " (written by a newer DuckDB)"
        return damaged(store_path, why)
    if not opening:
        return None
    if isinstance(exc, OSError):
        return StoreError(f"cannot use the store {store_path}: {exc.strerror or exc}")
    if isinstance(exc, duckdb.IOException | duckdb.PermissionException):
        return StoreError(
            f"cannot use the store {store_path}: {first_line(exc)}",
            "`hosting store check` tells whether the file itself is damaged",
        )
    return None


def truncation(conn: duckdb.DuckDBPyConnection, path: Path) -> str | None:
    """Why the file is shorter than the blocks DuckDB says are in use, or None.

    DuckDB loads the list of free blocks at open; every used block has its own place in the
    file after the three headers, so the file holds at least that many blocks. (It may hold
    fewer than the header's block count: DuckDB cuts free blocks off the end.) Called right
    after the open, before this connection writes anything.
    """
    row = conn.execute("SELECT block_size, used_blocks FROM pragma_database_size()").fetchone()
    if row is None or not row[0]:
        return None
    try:
        size = path.stat().st_size  # stat, not open: closing a descriptor drops DuckDB's lock
    except OSError:
        return None
    needed = 3 * HEADER + int(row[1]) * int(row[0])
    if size < needed:
        return (
            f"the file is {size} bytes but holds {row[1]} blocks in use, {needed} bytes (truncated)"
        )
    return None
