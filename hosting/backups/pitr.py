"""Point-in-time recovery: continuous WAL archiving, base backups, restore to a moment.

Layout, inside the database's backup folder (counted as database storage with the dumps):
  wal/   <segment>.gz and <segment>.gz.sha256, written by the server's archive_command
         through a bind mount (the server's own user writes them; mode 1777 under a 0700
         folder: no other user of the host reaches it). A segment's file appears only by
         rename, after its checksum.
  base/  <stamp>.base (a `pg_basebackup -Ft -z -X fetch` tar.gz, encrypted like the dumps) and
         <stamp>.json (checksum, times, the first WAL segment it needs).

A restore never touches the running server until the restored copy answers: the copy is
built in a sibling of the data directory (same volume, so the swap is two renames), run to
the target in a container with no network, stopped cleanly, and only then swapped in.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

from hosting.backups import crypto, files, reading
from hosting.backups.pg import CHUNK, Target, _exec_args, _locked, _summary, locate
from hosting.databases.local import run_sql
from hosting.errors import HostingError, ProviderError, UsageError
from hosting.metering.engine import Engine
from hosting.provider.runtime import docker_env
from hosting.spec.limits import tenant_or_error
from hosting.spec.models import DatabaseDeployment, Spec
from hosting.stacks import wal_archive
from hosting.stacks.wal_archive import ARCHIVE_MOUNT as ARCHIVE_MOUNT

DATA_MOUNT = "/var/lib/postgresql/data"  # the database volume (PGDATA is a folder in it)
WAL_DIR, BASE_DIR, BASE_SUFFIX = "wal", "base", ".base"
READY_TIMEOUT_S = 600.0
SEGMENT = re.compile(r"^[0-9A-F]{24}$")
SEALED = ".gz.enc"  # a segment the host has encrypted (wal_seal)

OPENED_MOUNT = "/var/lib/postgresql/wal-opened"  # sealed segments, decrypted (wal_seal)

# Run by the restoring server: a sealed segment from the scratch folder the host decrypted
# it into, else the plain one from the archive. A missing segment is "not archived" (exit
# 1); one that does not match its checksum or did not open stops recovery (exit > 125 is
# fatal to PostgreSQL).
RESTORE_COMMAND = (
    f"a={ARCHIVE_MOUNT}; o={OPENED_MOUNT}; f=%f; "
    'if [ -f "$o/$f.gz" ]; then gzip -dc "$o/$f.gz" > %p && exit 0; '
    'echo "restore: $f.gz.enc did not unpack" >&2; exit 200; fi; '
    'if [ -f "$o/$f.damaged" ]; then '
    'echo "restore: $f.gz.enc is damaged (it fails its authentication check)" >&2; exit 200; fi; '
    '[ -f "$a/$f.gz" ] || exit 1; '
    '(cd "$a" && sha256sum -c "$f.gz.sha256" >/dev/null 2>&1) || '
    '{ echo "restore: $f.gz does not match its checksum" >&2; exit 200; }; '
    'gzip -dc "$a/$f.gz" > %p'
)


def archive_dir(state_dir: Path, tenant: str, deployment: str) -> Path:
    return wal_archive.archive_dir(state_dir, tenant, deployment)


def base_dir(state_dir: Path, tenant: str, deployment: str) -> Path:
    return files.deployment_dir(state_dir, tenant, deployment) / BASE_DIR


# -- time and choice (pure) ----------------------------------------------------------------


def parse_target(text: str, now: datetime) -> datetime:
    """An ISO-8601 moment as aware UTC; no zone means UTC. Future or unreadable: UsageError."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--to-time `{text}` is not an ISO-8601 time", "e.g. 2026-11-25T10:15:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if moment > now:
        raise UsageError(
            f"--to-time {iso(moment)} is in the future (now is {iso(now)})",
            "give a moment in the past",
        )
    return moment


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class BaseBackup:
    tenant: str
    deployment: str
    name: str
    path: Path
    size_bytes: int
    sha256: str | None
    started: datetime  # aware UTC
    finished: datetime  # consistent from here on: the earliest moment it can restore to
    first_wal: str  # the oldest archived segment a restore from it reads
    pg_version: str | None = None


class NotArchiving(ProviderError):
    """A database container from before PITR: apply recreates it with archiving on."""


def choose_base(bases: list[BaseBackup], target: datetime) -> BaseBackup | None:
    """The newest base backup that finished before the target (the least WAL to replay)."""
    usable = [b for b in bases if b.finished < target]
    return max(usable, key=lambda b: b.finished) if usable else None


def _position(segment: str) -> str:
    return segment[8:]  # log and segment number; the timeline (first 8) does not order them


class Placed(Protocol):
    """A base backup placed in time: one on disk, or a copy off-host (offsite_retention)."""

    @property
    def finished(self) -> datetime: ...

    @property
    def first_wal(self) -> str: ...


P = TypeVar("P", bound=Placed)


def retention(
    bases: list[P], wal: list[str], days: int, now: datetime
) -> tuple[list[P], list[str]]:
    """(base backups, WAL segments) no longer needed to restore to any moment of the last
    `days` days: the newest base backup from before the window stays (it is what restores
    to the window's start), and every segment from the oldest kept base backup's on."""
    start = now - timedelta(days=days)
    ordered = sorted(bases, key=lambda b: b.finished)
    before = [b for b in ordered if b.finished < start]
    drop = before[:-1]
    kept = [b for b in ordered if b not in drop]
    if not kept:
        return [], []  # no base backup: no segment can be told unneeded
    floor = min(_position(b.first_wal) for b in kept)
    return drop, [s for s in wal if SEGMENT.match(s) and _position(s) < floor]


# -- on disk -------------------------------------------------------------------------------


def list_bases(state_dir: Path, tenant: str, deployment: str) -> list[BaseBackup]:
    """Complete base backups with a readable sidecar, oldest first."""
    folder = base_dir(state_dir, tenant, deployment)
    out = []
    for path in sorted(folder.glob("*" + BASE_SUFFIX)) if folder.is_dir() else []:
        if path.name.startswith("."):
            continue
        meta = files.read_meta(path)
        try:
            started = _aware(meta["started"])
            finished = _aware(meta["finished"])
            first = str(meta["first_wal"])
        except (KeyError, ValueError, TypeError):
            continue  # no sidecar: it cannot be placed in time, so it is never chosen
        sha = meta.get("sha256")
        version = meta.get("pg_version")
        out.append(
            BaseBackup(
                tenant, deployment, path.name, path, path.stat().st_size,
                sha if isinstance(sha, str) else None, started, finished, first,
                version if isinstance(version, str) else None,
            )
        )  # fmt: skip
    return out


def _aware(text: Any) -> datetime:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).astimezone(UTC)


def archived_segments(state_dir: Path, tenant: str, deployment: str) -> list[str]:
    folder = archive_dir(state_dir, tenant, deployment)
    if not folder.is_dir():
        return []
    names = set()
    for p in folder.iterdir():
        if p.name.startswith(".") or not p.is_file():
            continue
        for suffix in (".gz", SEALED):  # plain as archived, or sealed since (wal_seal)
            if p.name.endswith(suffix):
                names.add(p.name[: -len(suffix)])
    return sorted(names)


@dataclass(frozen=True)
class ArchiveSummary:
    segments: int
    size_bytes: int
    oldest: str | None
    newest: str | None


def archive_summary(state_dir: Path, tenant: str, deployment: str) -> ArchiveSummary:
    folder = archive_dir(state_dir, tenant, deployment)
    names = [s for s in archived_segments(state_dir, tenant, deployment) if SEGMENT.match(s)]
    size = 0
    if folder.is_dir():
        for p in folder.iterdir():
            if p.is_file() and not p.is_symlink():
                size += p.stat().st_size
    return ArchiveSummary(
        len(names), size, names[0] if names else None, names[-1] if names else None
    )


def prune(
    state_dir: Path, tenant: str, deployment: str, days: int, now: datetime | None = None
) -> tuple[list[str], list[str]]:
    """Apply `retention`; also drop the archive's partials a killed run left (over 6 h old)."""
    now = now or datetime.now(UTC)
    bases = list_bases(state_dir, tenant, deployment)
    wal = archived_segments(state_dir, tenant, deployment)
    drop_bases, drop_wal = retention(bases, wal, days, now)
    for b in drop_bases:
        b.path.with_suffix(files.SIDECAR).unlink(missing_ok=True)
        b.path.unlink(missing_ok=True)
    folder = archive_dir(state_dir, tenant, deployment)
    for seg in drop_wal:
        (folder / f"{seg}.gz.sha256").unlink(missing_ok=True)
        (folder / f"{seg}.gz").unlink(missing_ok=True)
        (folder / f"{seg}{SEALED}").unlink(missing_ok=True)
    cutoff = time.time() - files.STALE_PARTIAL_S
    for sub in (folder, base_dir(state_dir, tenant, deployment)):
        for partial in sub.glob(".*" + files.PARTIAL) if sub.is_dir() else []:
            try:
                if partial.lstat().st_mtime < cutoff:
                    partial.unlink()
            except OSError:
                continue
    return [b.name for b in drop_bases], drop_wal


def retention_days(spec: Spec, tenant: str) -> int:
    return spec.plan_of(tenant_or_error(spec, tenant)).backup_retention_days


# -- base backups --------------------------------------------------------------------------


def _psql_value(spec: Spec, target: Target, sql: str, timeout: float = 60) -> str:
    """One value from the live server, on its local socket (hosting.databases.local)."""
    return run_sql(
        spec.platform.docker.host, target.container, target.user, target.dbname, sql,
        timeout=timeout, one_transaction=False,
    ).strip()  # fmt: skip


def base_backup(
    spec: Spec,
    state_dir: Path,
    tenant: str,
    deployment: str,
    *,
    engine: Engine | None = None,
    timeout_s: float = 3600.0,
) -> BaseBackup:
    """One `pg_basebackup` of the running server into base/, encrypted, atomic, checksummed.
    Refuses when the server does not archive its WAL (a container from before PITR)."""
    engine = engine or Engine(spec.platform.docker.host)
    target = locate(spec, engine, tenant, deployment)
    ref = f"{tenant}/{deployment}"
    if _psql_value(spec, target, "SHOW archive_mode") != "on":
        raise NotArchiving(
            f"{ref} does not archive its WAL yet",
            "run `hosting apply`: it recreates the database container with archiving on",
        )
    folder = base_dir(state_dir, tenant, deployment)
    folder.mkdir(parents=True, exist_ok=True)
    passphrase = reading.platform_passphrase()
    with _locked(folder, ref):
        first = _psql_value(spec, target, "SELECT pg_walfile_name(pg_current_wal_lsn())")
        version = _psql_value(spec, target, "SHOW server_version").split()[0]
        started = datetime.now(UTC)
        name = files.stamp(started.replace(tzinfo=None)) + BASE_SUFFIX
        final, tmp = folder / name, folder / ("." + name + files.PARTIAL)
        args = _exec_args(
            target, "pg_basebackup", "-D", "-", "-Ft", "-z", "-X", "fetch", "-c", "fast",
            "-U", target.user,
        )  # fmt: skip
        digest, size = hashlib.sha256(), 0
        try:
            with (
                tmp.open("wb") as out,
                subprocess.Popen(
                    args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, env=docker_env(spec),
                ) as proc,
            ):  # fmt: skip
                assert proc.stdout is not None and proc.stderr is not None
                errors: list[bytes] = []
                err = proc.stderr
                reader = threading.Thread(target=lambda: errors.append(err.read()), daemon=True)
                reader.start()
                timer = threading.Timer(timeout_s, proc.kill)
                timer.start()
                try:
                    for sealed in crypto.seal(_chunks(proc.stdout), passphrase):
                        out.write(sealed)
                        digest.update(sealed)
                        size += len(sealed)
                    code = proc.wait()
                finally:
                    timer.cancel()
                reader.join(timeout=10)
                out.flush()
                os.fsync(out.fileno())
            if code != 0:
                raise ProviderError(
                    f"pg_basebackup of {ref} failed (exit {code}):"
                    f" {_summary(b''.join(errors), target)}"
                )
            tmp.replace(final)
            files.fsync_dir(folder)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finished = datetime.now(UTC)
        files.write_sidecar(
            final,
            {
                "tenant": tenant, "deployment": deployment,
                "format": "pg_basebackup -Ft -z -X fetch",
                "encryption": crypto.DESCRIPTION, "size_bytes": size,
                "sha256": digest.hexdigest(), "started": iso(started), "finished": iso(finished),
                "first_wal": first, "pg_version": version, "image": target.image,
            },
        )  # fmt: skip
    return next(b for b in list_bases(state_dir, tenant, deployment) if b.name == name)


def _chunks(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK):
        yield chunk


@dataclass(frozen=True)
class BaseOutcome:
    tenant: str
    deployment: str
    ok: bool
    backup: BaseBackup | None = None
    pruned: tuple[str, ...] = ()
    error: str | None = None
    skipped: bool = False  # not archiving yet: no base backup can serve it
    sealed: tuple[str, ...] = ()  # WAL files sealed after it (wal_seal)
    offsite: tuple[str, ...] = ()  # keys copied to platform.backups.s3 (offsite.sync_pitr)
    offsite_pruned: tuple[str, ...] = ()  # keys its retention deleted (offsite_retention)


def base_backup_all(
    spec: Spec,
    state_dir: Path,
    *,
    engine: Engine | None = None,
    skip: frozenset[tuple[str, str]] = frozenset(),
) -> list[BaseOutcome]:
    """The agent's job: a base backup of every running database, then its plan's retention.
    `skip`: (tenant, deployment) pairs left out (the agent's: those whose dump just failed,
    whose failure is already reported)."""
    out = []
    for tid, tenant in spec.tenants.items():
        for did, dep in tenant.deployments.items():
            if not isinstance(dep, DatabaseDeployment) or dep.stopped or (tid, did) in skip:
                continue
            try:
                made = base_backup(spec, state_dir, tid, did, engine=engine)
                gone, wal = prune(state_dir, tid, did, spec.plan_of(tenant).backup_retention_days)
                out.append(BaseOutcome(tid, did, True, made, (*gone, *wal)))
            except NotArchiving as exc:
                out.append(BaseOutcome(tid, did, True, error=exc.message, skipped=True))
            except HostingError as exc:
                out.append(BaseOutcome(tid, did, False, error=exc.message))
            except OSError as exc:
                out.append(BaseOutcome(tid, did, False, error=f"{exc.strerror or exc}"))
    return out
