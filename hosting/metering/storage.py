"""Storage per deployment and type, hourly by default. Only what is needed is measured
(`docker system df` walks every file on the host and can take minutes):

- code: the image (once per deployment, however many replicas) plus each container's
  writable layer, from one listing call with sizes;
- database: `pg_database_size`, asked through psycopg with given credentials or inside the
  database container on its local socket, plus what else its volume holds (WAL, cluster
  files) when the volume is readable on this host;
- static: the site's folder (web/API deployments with `static:`);
- logs: the containers' json log files plus the deployment's share of the edge access logs;
- cache: other named volumes mounted into web/API containers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hosting.errors import MeteringError
from hosting.metering.engine import Container, Engine
from hosting.metering.ingest import write_storage
from hosting.metering.samples import StorageSample
from hosting.spec import names
from hosting.spec.models import DatabaseDeployment, Spec
from hosting.store import connect, transaction

# (tenant, deployment) → psycopg connection info (a conninfo string or keyword dict), or None.
Credentials = Callable[[str, str], "str | dict[str, Any] | None"]


@dataclass
class StorageResult:
    samples: int = 0
    measured: list[StorageSample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def walk(path: Path) -> tuple[int, int]:
    """(bytes, files) under path, not following symlinks; unreadable parts are skipped."""
    total = files = 0
    stack = [str(path)]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                entries = list(it)
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
                    files += 1
            except OSError:
                continue
    return total, files


SIZE_SQL = (
    "SELECT pg_database_size(%s), (SELECT sum(pg_database_size(datname))::bigint"
    " FROM pg_database WHERE datallowconn)"
)


def database_size(conninfo: str | dict[str, Any], dbname: str) -> tuple[int, int]:
    """(this database's size, all databases' size) from the server itself. A conninfo with
    a `container` asks inside that container (see `container_credentials`)."""
    import psycopg

    if isinstance(conninfo, dict) and "container" in conninfo:
        return _size_in_container(conninfo, dbname)

    kwargs: dict[str, Any] = {"connect_timeout": 10}
    try:
        if isinstance(conninfo, str):
            conn = psycopg.connect(conninfo, **kwargs)
        else:
            conn = psycopg.connect(**{**conninfo, **kwargs})
    except psycopg.Error as exc:
        # The message may echo connection parameters; keep only its first line's gist.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MeteringError(f"cannot connect to database {dbname}: {first}") from None
    try:
        with conn:
            row = conn.execute(SIZE_SQL, [dbname]).fetchone()
    except psycopg.Error as exc:  # e.g. the database was dropped or renamed by hand
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MeteringError(f"cannot measure database {dbname}: {first}") from None
    assert row is not None
    return int(row[0]), int(row[1] or 0)


def _size_in_container(where: dict[str, Any], dbname: str) -> tuple[int, int]:
    from hosting.databases.local import run_sql
    from hosting.databases.roles import literal
    from hosting.errors import HostingError

    sql = SIZE_SQL.replace("%s", literal(dbname))
    try:
        out = run_sql(where["docker_host"], where["container"], where["user"], dbname, sql)
        own, everything = out.strip().split("|")
    except (HostingError, ValueError) as exc:
        reason = exc.message if isinstance(exc, HostingError) else "unexpected answer"
        raise MeteringError(f"cannot measure database {dbname}: {reason}") from None
    return int(own), int(everything or 0)


@dataclass(frozen=True)
class _Volume:
    name: str
    size: int
    files: int | None  # None: counted by another node's engine, which gives no file count


def _volumes(engine: Engine, containers: list[Container]) -> list[_Volume]:
    """The containers' named volumes, measured: walked when their files are on this machine,
    else as their own node's engine counts them (a swarm task on another node). A volume is
    one engine's: the same name on two nodes is two volumes."""
    out: dict[tuple[str, str], _Volume] = {}
    for c in containers:
        where = engine.host_of(c.id)
        mounted = [
            (str(m.get("Name", "")), Path(str(m["Source"])))
            for m in c.mounts
            if m.get("Type") == "volume" and m.get("Source")
            if (where, str(m.get("Name", ""))) not in out
        ]
        if not mounted:
            continue
        if engine.local(c.id):
            for name, source in mounted:
                if source.is_dir():
                    out[(where, name)] = _Volume(name, *walk(source))
            continue
        sizes = engine.volume_sizes(c.id)
        for name, _ in mounted:
            if name in sizes:
                out[(where, name)] = _Volume(name, sizes[name], None)
    return list(out.values())


def storage_cycle(
    store_path: Path,
    engine: Engine,
    spec: Spec,
    *,
    spec_dir: Path,
    credentials: Credentials | None = None,
    now: datetime | None = None,
    backups_dir: Path | None = None,
) -> StorageResult:
    stamp = now or datetime.now(UTC).replace(tzinfo=None)
    backups = backups_dir or store_path.parent / "backups"  # STATE_DIR/backups (hosting.backups)
    result = StorageResult()
    by_dep: dict[tuple[str, str], list[Container]] = {}
    for c in engine.containers(all=True, size=True):
        if c.tenant in spec.tenants:
            by_dep.setdefault((c.tenant, c.deployment), []).append(c)
    with connect(store_path) as conn:
        log_shares = {
            (r[0], r[1]): int(r[2])
            for r in conn.execute(
                "SELECT tenant, deployment, bytes FROM access_log_bytes"
            ).fetchall()
        }
        still_held = conn.execute(
            "SELECT tenant, deployment, storage_type FROM deployment_storage"
            " GROUP BY ALL HAVING arg_max(size_bytes, last_calculated) > 0"
        ).fetchall()
    image_sizes: dict[str, int] = {}
    samples: list[StorageSample] = []

    def add(tid: str, did: str, kind: str, size: int, files: int | None) -> None:
        samples.append(StorageSample(tid, did, kind, size, files, stamp))

    # Billing holds each measurement until the next one: a deployment removed from the file
    # must be measured once at zero, or its last size would be billed forever.
    for tid, did, kind in still_held:
        tenant_now = spec.tenants.get(tid)
        if tenant_now is None or did not in tenant_now.deployments:
            add(tid, did, kind, 0, 0)

    for tid, tenant in spec.tenants.items():
        for did, dep in tenant.deployments.items():
            containers = by_dep.get((tid, did), [])
            try:
                if isinstance(dep, DatabaseDeployment):
                    _database(add, tid, did, _volumes(engine, containers), credentials,
                              spec.platform.name)  # fmt: skip
                    _add_backups(samples, add, tid, did, backups / tid / did)
                else:
                    if dep.static is not None:
                        size, files = walk((spec_dir / dep.static).resolve())
                        add(tid, did, "static", size, files)
                    if containers:
                        code = sum(c.size_rw or 0 for c in containers)
                        for image in {c.image_id for c in containers if c.image_id}:
                            if image not in image_sizes:
                                image_sizes[image] = engine.image_size(image)
                            code += image_sizes[image]
                        add(tid, did, "code", code, None)
                        volumes = _volumes(engine, containers)
                        cache = sum(v.size for v in volumes)
                        if cache:
                            add(tid, did, "cache", cache, _files(volumes))
                logs = log_shares.get((tid, did), 0)
                for c in containers:
                    if not engine.local(c.id):
                        continue  # its log file is on its own node
                    log_path = engine.inspect(c.id).get("LogPath") or ""
                    if log_path:
                        with contextlib.suppress(OSError):  # rotated away just now
                            logs += os.stat(log_path).st_size
                if logs or containers:
                    add(tid, did, "logs", logs, None)
            except MeteringError as exc:
                result.errors.append(f"{tid}/{did}: {exc.message}")
    result.measured = samples
    with connect(store_path) as conn, transaction(conn):
        result.samples = write_storage(conn, samples)
    return result


def _database(
    add: Callable[[str, str, str, int, int | None], None],
    tid: str,
    did: str,
    volumes: list[_Volume],
    credentials: Credentials | None,
    platform: str,
) -> None:
    data_volume = names.volume_name(platform, tid, did)
    chosen = [v for v in volumes if v.name == data_volume]
    # Read replicas' copies count as the database's storage too (issue 12).
    replica_prefix = names.volume_name(platform, tid, did, "replica")
    copies = [v for v in volumes if v.name.startswith(replica_prefix)]
    chosen = chosen or [v for v in volumes if v not in copies]
    readable = bool(chosen)
    volume_bytes = sum(v.size for v in chosen)
    copies_bytes = sum(v.size for v in copies)
    counted = _files([*chosen, *copies])
    info = credentials(tid, did) if credentials else None
    if info is not None:
        own, everything = database_size(info, names.database_name(did))
        # The volume also holds WAL and cluster files that no pg_database_size counts.
        overhead = max(0, volume_bytes - everything) if readable else 0
        add(tid, did, "database", own + overhead + copies_bytes, counted if readable else None)
    elif readable:
        add(tid, did, "database", volume_bytes + copies_bytes, counted)


def _files(volumes: list[_Volume]) -> int | None:
    counts = [v.files for v in volumes]
    return None if any(n is None for n in counts) else sum(n for n in counts if n is not None)


def _add_backups(
    samples: list[StorageSample],
    add: Callable[[str, str, str, int, int | None], None],
    tid: str,
    did: str,
    folder: Path,
) -> None:
    # The product document lists backups under Database Storage: their files count there.
    size, files = walk(folder)
    if not size:
        return
    for i, s in enumerate(samples):
        if (s.tenant, s.deployment, s.storage_type) == (tid, did, "database"):
            count = None if s.file_count is None else s.file_count + files
            samples[i] = dataclasses.replace(s, size_bytes=s.size_bytes + size, file_count=count)
            return
    add(tid, did, "database", size, files)


def container_credentials(engine: Engine) -> Credentials:
    """Each running database container, asked on its local socket as its POSTGRES_USER: no
    password needed, so a rotated one (`hosting secrets rotate`) changes nothing here."""

    def lookup(tenant: str, deployment: str) -> dict[str, Any] | None:
        for c in engine.containers(all=False):
            if (c.tenant, c.deployment, c.kind) != (tenant, deployment, "database"):
                continue
            env = dict(
                item.split("=", 1)
                for item in (engine.inspect(c.id).get("Config") or {}).get("Env") or []
                if "=" in item
            )
            return {
                "container": c.id,
                "docker_host": engine.host_of(c.id),
                "user": env.get("POSTGRES_USER", "postgres"),
            }
        return None

    return lookup
