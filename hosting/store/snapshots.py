"""Snapshots of the store and restoring one.

A snapshot is a byte copy of the store file taken while this process holds it open for
writing, just after a CHECKPOINT: DuckDB's lock keeps every other process out and the
store's gate every other thread, and the checkpoint folds the write-ahead log into the file,
so the copy alone is the whole, consistent store. The store is read back completely first:
a damaged store is never copied, so retention never pushes the good snapshots out.

Restore writes the snapshot beside the store, fsyncs it and renames it over the store in one
step; the file it replaces stays, under a `.damaged-<stamp>` name, never deleted.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import duckdb

from hosting.backups.files import fsync_dir
from hosting.errors import NotFoundError, StoreError, UsageError
from hosting.store import _file_lock, _gate, connect, damage, snapfiles
from hosting.store.snapfiles import Snapshot

COPY_CHUNK = 1 << 20
RESTORE_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class TakenSnapshot:
    snapshot: Snapshot
    sha256: str
    removed: tuple[str, ...]


@dataclass(frozen=True)
class RestorePlan:
    """What `store restore` does (or, without --yes, would do)."""

    store: Path
    snapshot: Snapshot
    sha256: str
    aside: Path | None  # where the current store goes; None when there is none
    current: str  # the current store's state in words: "damaged: …", "opens", "missing"


def read_everything(conn: duckdb.DuckDBPyConnection) -> int:
    """Read every row of every table (DuckDB checks each block's checksum as it reads it);
    returns the number of rows. Raises duckdb.Error on a damaged block."""
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT table_name FROM duckdb_tables() WHERE NOT temporary ORDER BY table_name"
        ).fetchall()
    ]
    rows = 0
    for table in tables:
        quoted = '"' + table.replace('"', '""') + '"'
        found = conn.execute(f"SELECT count(hash(t)) FROM {quoted} AS t").fetchone()
        rows += int(found[0]) if found else 0
    return rows


def _copy(src: BinaryIO, target: Path) -> str:
    """Copy from the start of `src` and fsync; returns the sha256 of what was written."""
    digest = hashlib.sha256()
    src.seek(0)
    with target.open("wb") as dst:
        while chunk := src.read(COPY_CHUNK):
            digest.update(chunk)
            dst.write(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    return digest.hexdigest()


def _write_checksum(snapshot: Path, sha256: str) -> None:
    target = snapfiles.checksum_path(snapshot)
    tmp = target.with_name("." + target.name + snapfiles.PARTIAL)
    try:
        with tmp.open("w") as fh:
            fh.write(f"{sha256}  {snapshot.name}\n")
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def take(store_path: Path, *, keep: int = snapfiles.DEFAULT_KEEP) -> TakenSnapshot:
    """Snapshot the store into the backup area and keep the newest `keep`."""
    if keep < 1:
        raise UsageError(f"--keep must be at least 1, not {keep}")
    store_path = store_path.absolute()
    if not store_path.exists():
        raise NotFoundError(f"there is no store at {store_path} to snapshot yet")
    folder = snapfiles.snapshot_dir(store_path)
    name = snapfiles.name_for(snapfiles.utcnow())
    final = folder / name
    partial = folder / f".{name}{snapfiles.PARTIAL}"
    # Opened before DuckDB opens the store and closed after it lets go: closing a descriptor
    # of the file while DuckDB holds it would drop DuckDB's lock (POSIX locks are per process).
    with store_path.open("rb") as source, connect(store_path) as conn:
        conn.execute("CHECKPOINT")
        read_everything(conn)
        # Still holding the store: checksum, rename and pruning of two snapshot runs never
        # interleave.
        try:
            folder.mkdir(parents=True, exist_ok=True)
            sha256 = _copy(source, partial)
            _write_checksum(final, sha256)
            partial.replace(final)
            fsync_dir(folder)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            if not final.exists():
                snapfiles.checksum_path(final).unlink(missing_ok=True)
            if damage.is_disk_full(exc):
                raise damage.disk_full(final) from None
            raise StoreError(f"cannot write the snapshot {final}: {exc.strerror or exc}") from None
        removed = snapfiles.prune(store_path, keep)
    taken = next(s for s in snapfiles.list_snapshots(store_path) if s.name == name)
    return TakenSnapshot(taken, sha256, tuple(removed))


def resolve(store_path: Path, snapshot: str) -> Snapshot:
    """SNAPSHOT as a name in the snapshot folder (with or without .duckdb), a path, or
    `latest`."""
    found = snapfiles.list_snapshots(store_path)
    if snapshot == "latest" and found:
        return found[-1]
    by_name = {s.name: s for s in found}
    for name in (snapshot, snapshot + snapfiles.SUFFIX):
        if name in by_name:
            return by_name[name]
    path = Path(snapshot)
    if path.is_file():
        taken = snapfiles.utcnow()
        return Snapshot(path.name, path.absolute(), path.stat().st_size, taken)
    names = ", ".join(s.name for s in found[-3:]) or "none yet"
    raise NotFoundError(
        f"no snapshot {snapshot} in {snapfiles.snapshot_dir(store_path)}",
        f"the newest: {names}; `hosting store snapshot` takes one",
    )


def _verify(snapshot: Snapshot) -> str:
    recorded = snapfiles.recorded_sha256(snapshot.path)
    if recorded is None:
        raise StoreError(
            f"the snapshot {snapshot.path} has no readable checksum file "
            f"({snapshot.checksum_path.name})",
            "restore only a snapshot whose checksum can be checked; choose another",
        )
    actual = snapfiles.sha256_of(snapshot.path)
    if actual != recorded:
        raise StoreError(
            f"the snapshot {snapshot.path} does not match its checksum (sha256 {actual}, "
            f"recorded {recorded}): it is damaged",
            "choose an older snapshot",
        )
    return actual


def _current_state(store_path: Path) -> str:
    """How the store to be replaced is: refuses when another process has it open."""
    if not store_path.exists():
        return "missing"
    try:
        conn = duckdb.connect(str(store_path))
    except duckdb.Error as exc:
        if damage.is_lock_error(exc):
            raise damage.busy(store_path, "another process has it open") from None
        return f"damaged: {damage.first_line(exc)}"
    try:
        why = damage.truncation(conn, store_path)
        if why is None:
            read_everything(conn)
    except duckdb.Error as exc:
        why = damage.first_line(exc)
    finally:
        conn.close()
    return f"damaged: {why}" if why else "opens"


def plan(store_path: Path, snapshot: str) -> RestorePlan:
    store_path = store_path.absolute()
    snap = resolve(store_path, snapshot)
    sha256 = _verify(snap)
    current = _current_state(store_path)
    aside = None
    if current != "missing":
        stamp = snapfiles.name_for(snapfiles.utcnow())
        stamp = stamp.removeprefix(snapfiles.PREFIX).removesuffix(snapfiles.SUFFIX)
        word = "replaced" if current == "opens" else "damaged"
        aside = store_path.with_name(f"{store_path.name}.{word}-{stamp}")
    return RestorePlan(store_path, snap, sha256, aside, current)


def restore(store_path: Path, snapshot: str, *, confirmed: bool) -> RestorePlan:
    """Put SNAPSHOT in place of the store; without `confirmed`, say what it would do and
    refuse."""
    store_path = store_path.absolute()
    deadline = time.monotonic() + RESTORE_WAIT_SECONDS
    with _gate(store_path, deadline), _file_lock(store_path, deadline):
        p = plan(store_path, snapshot)
        if not confirmed:
            keep = f", keeping the current store ({p.current}) as {p.aside}" if p.aside else ""
            raise UsageError(
                f"would restore {p.store} from {p.snapshot.path} (sha256 {p.sha256[:12]}… "
                f"matches){keep}; nothing done",
                "rerun with --yes to restore",
            )
        partial = store_path.with_name(f".{store_path.name}.restore{snapfiles.PARTIAL}")
        try:
            with p.snapshot.path.open("rb") as source:
                written = _copy(source, partial)
            if written != p.sha256:
                raise StoreError(f"the copy of {p.snapshot.path} did not read back the same")
            if p.aside is not None:
                # A second name for the current file: the store name never goes missing, so
                # no process can start an empty store in the gap.
                os.link(store_path, p.aside)
                wal = store_path.with_name(store_path.name + ".wal")
                if wal.exists():  # its log belongs to the old file, never to the snapshot
                    wal.replace(p.aside.with_name(p.aside.name + ".wal"))
            partial.replace(store_path)
            fsync_dir(store_path.parent)
        except OSError as exc:
            if damage.is_disk_full(exc):
                raise damage.disk_full(store_path) from None
            raise StoreError(f"cannot restore {store_path}: {exc.strerror or exc}") from None
        finally:
            partial.unlink(missing_ok=True)
    # The restored file is a new inode: the next open migrates it if it is older.
    return p
