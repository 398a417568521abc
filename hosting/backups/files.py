"""The backup folder: names, sidecars, listing and retention. No Docker here.

Layout: STATE_DIR/backups/<tenant>/<deployment>/<stamp>.dump and <stamp>.json, where stamp
is the UTC start time (20261125T125205.123Z) so names sort in time order. A dump is written
as a hidden `.partial` file and renamed only when complete and fsynced: a `.dump` name
always means a whole dump.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hosting.errors import NotFoundError, UsageError

SUFFIX, SIDECAR, PARTIAL = ".dump", ".json", ".partial"
STALE_PARTIAL_S = 6 * 3600  # a partial this old belongs to a run that died


@dataclass(frozen=True)
class BackupFile:
    tenant: str
    deployment: str
    name: str
    path: Path
    size_bytes: int
    sha256: str | None
    started: datetime | None  # naive UTC
    finished: datetime | None
    pg_version: str | None


def backups_root(state_dir: Path) -> Path:
    return state_dir / "backups"


def deployment_dir(state_dir: Path, tenant: str, deployment: str) -> Path:
    return backups_root(state_dir) / tenant / deployment


def stamp(moment: datetime) -> str:
    """20261125T125205.123Z: UTC, sortable, no characters a shell or Windows dislikes."""
    return moment.strftime("%Y%m%dT%H%M%S.") + f"{moment.microsecond // 1000:03d}Z"


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="milliseconds") + "Z"


def _parse_iso(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return (
            datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)
        )
    except ValueError:
        return None


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name("." + path.name + PARTIAL)
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    fsync_dir(path.parent)


def write_sidecar(dump: Path, meta: dict[str, Any]) -> None:
    body = json.dumps(meta, indent=2, sort_keys=True) + "\n"
    write_atomic(dump.with_suffix(SIDECAR), body.encode())


def read_meta(dump: Path) -> dict[str, Any]:
    """The sidecar's fields; {} when it is missing or unreadable (the dump is still whole)."""
    try:
        loaded = json.loads(dump.with_suffix(SIDECAR).read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _read(tenant: str, deployment: str, dump: Path) -> BackupFile:
    meta = read_meta(dump)
    return BackupFile(
        tenant=tenant,
        deployment=deployment,
        name=dump.name,
        path=dump,
        size_bytes=dump.stat().st_size,
        sha256=meta.get("sha256") if isinstance(meta.get("sha256"), str) else None,
        started=_parse_iso(meta.get("started")),
        finished=_parse_iso(meta.get("finished")),
        pg_version=meta.get("pg_version") if isinstance(meta.get("pg_version"), str) else None,
    )


def list_backups(
    state_dir: Path, tenant: str | None = None, deployment: str | None = None
) -> list[BackupFile]:
    """Complete backups on disk, oldest first per deployment (partials are never listed)."""
    root = backups_root(state_dir)
    out: list[BackupFile] = []
    tenants = [tenant] if tenant else sorted(p.name for p in _dirs(root))
    for tid in tenants:
        deps = [deployment] if deployment else sorted(p.name for p in _dirs(root / tid))
        for did in deps:
            folder = root / tid / did
            if not folder.is_dir():
                continue
            for dump in sorted(folder.glob("*" + SUFFIX)):
                if not dump.name.startswith("."):
                    out.append(_read(tid, did, dump))
    return out


def _dirs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]


def prune(folder: Path, keep: int) -> list[str]:
    """Keep the newest `keep` dumps (with their sidecars); drop stale partials. Returns the
    names removed."""
    if keep < 1:
        raise UsageError(f"--keep must be at least 1, not {keep}")
    dumps = sorted(p for p in folder.glob("*" + SUFFIX) if not p.name.startswith("."))
    removed = []
    for old in dumps[: max(0, len(dumps) - keep)]:
        old.with_suffix(SIDECAR).unlink(missing_ok=True)
        old.unlink(missing_ok=True)
        removed.append(old.name)
    cutoff = time.time() - STALE_PARTIAL_S
    for partial in folder.glob(".*" + PARTIAL):
        try:
            if partial.stat().st_mtime < cutoff:
                partial.unlink()
        except OSError:
            continue
    return removed


def folder_bytes(state_dir: Path, tenant: str, deployment: str) -> tuple[int, int]:
    """(bytes, files) of one deployment's backup folder, sidecars and partials included: all
    of it is disk the tenant's backups use."""
    folder = deployment_dir(state_dir, tenant, deployment)
    total = files = 0
    if folder.is_dir():
        for entry in folder.iterdir():
            try:
                if entry.is_file():
                    total += entry.stat().st_size
                    files += 1
            except OSError:
                continue
    return total, files


def resolve(state_dir: Path, tenant: str, deployment: str, file: str) -> Path:
    """FILE as a path, a name (with or without .dump) in the deployment's folder, or
    `latest` for the newest backup there."""
    folder = deployment_dir(state_dir, tenant, deployment)
    if file == "latest":
        found = list_backups(state_dir, tenant, deployment)
        if found:
            return found[-1].path
    candidates = [Path(file)]
    if "/" not in file:
        candidates += [folder / file, folder / (file + SUFFIX)]
    for path in candidates:
        if path.is_file():
            return path
    raise NotFoundError(
        f"no backup file {file}",
        f"see `hosting backup list {tenant}/{deployment}`",
    )
