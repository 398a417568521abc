"""Where the store's snapshots live, and how they are named, listed, checked and pruned.

Layout: STATE_DIR/backups/_store/hosting-<stamp>.duckdb, each with a `.sha256` beside it in
`sha256sum` format (so `sha256sum -c` checks it too). `_store` cannot collide with a tenant's
folder (tenant ids are DNS labels, which have no `_`), and the database backups' listing finds
no deployment folders in it. A snapshot is written as a hidden `.partial` file and renamed
only when complete and fsynced: a `.duckdb` name always means a whole snapshot.

No DuckDB here: the store's error messages use this module to name the newest snapshot.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hosting.backups.files import STALE_PARTIAL_S

FOLDER, PREFIX, SUFFIX, CHECKSUM, PARTIAL = "_store", "hosting-", ".duckdb", ".sha256", ".partial"
DEFAULT_KEEP = 7  # a week of daily snapshots


@dataclass(frozen=True)
class Snapshot:
    name: str
    path: Path
    size_bytes: int
    taken: datetime  # naive UTC, from the name

    @property
    def checksum_path(self) -> Path:
        return checksum_path(self.path)


def snapshot_dir(store_path: Path) -> Path:
    """The store lives at STATE_DIR/hosting.duckdb; its snapshots in STATE_DIR/backups/_store
    (hosting.backups' root, named here: importing that package would load its Docker code)."""
    return store_path.parent / "backups" / FOLDER


def checksum_path(snapshot: Path) -> Path:
    return snapshot.with_name(snapshot.name + CHECKSUM)


def name_for(moment: datetime) -> str:
    """hosting-20261129T150000.123Z.duckdb: UTC, sortable in time order."""
    return f"{PREFIX}{moment:%Y%m%dT%H%M%S}.{moment.microsecond // 1000:03d}Z{SUFFIX}"


def _taken(name: str) -> datetime | None:
    try:
        return datetime.strptime(name[len(PREFIX) : -len(SUFFIX)], "%Y%m%dT%H%M%S.%fZ")
    except ValueError:
        return None


def list_snapshots(store_path: Path) -> list[Snapshot]:
    """Complete snapshots, oldest first (partials are never listed)."""
    folder = snapshot_dir(store_path)
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob(f"{PREFIX}*{SUFFIX}")):
        taken = _taken(path.name)
        if taken is None:
            continue
        try:
            size = path.stat().st_size
        except OSError:  # pruned meanwhile
            continue
        out.append(Snapshot(path.name, path, size, taken))
    return out


def newest(store_path: Path) -> Snapshot | None:
    found = list_snapshots(store_path)
    return found[-1] if found else None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def recorded_sha256(snapshot: Path) -> str | None:
    """The digest its `.sha256` file records, or None when that file is missing or unreadable."""
    try:
        text = checksum_path(snapshot).read_text()
    except (OSError, UnicodeDecodeError):
        return None
    digest, _, name = text.strip().partition("  ")
    if name != snapshot.name or len(digest) != 64:
        return None
    return digest


def prune(store_path: Path, keep: int) -> list[str]:
    """Keep the newest `keep` snapshots with their checksums; drop orphaned checksum files and
    stale partials. Returns the snapshot names removed."""
    folder = snapshot_dir(store_path)
    found = list_snapshots(store_path)
    removed = []
    for old in found[: max(0, len(found) - keep)]:
        old.path.unlink(missing_ok=True)
        old.checksum_path.unlink(missing_ok=True)
        removed.append(old.name)
    kept = {s.name for s in found} - set(removed)
    for orphan in folder.glob(f"{PREFIX}*{SUFFIX}{CHECKSUM}"):
        if orphan.name.removesuffix(CHECKSUM) not in kept:
            orphan.unlink(missing_ok=True)
    cutoff = time.time() - STALE_PARTIAL_S
    for partial in folder.glob(f".*{PARTIAL}"):
        try:
            if partial.stat().st_mtime < cutoff:
                partial.unlink()
        except OSError:
            continue
    return removed


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
