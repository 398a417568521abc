"""Restore drills: prove a backup restores before anyone needs it to.

The newest backup of each database is read whole (checksum, every encrypted chunk), restored
into a throwaway container of the same image (no network, read-only root, no capabilities
but the entrypoint's, its data on an anonymous volume), and the row counts of the tables
counted when the backup was taken are compared with the restored ones. The container is
removed whatever happens. Each result goes to the store's `restore_drills` table, which
`backup list`, `status` and the usage report read.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from hosting import store
from hosting.backups import counts, files, reading
from hosting.backups.pg import Target, _exec_args, _summary, locate
from hosting.errors import HostingError
from hosting.metering.engine import Engine
from hosting.provider.runtime import docker_checked, docker_env
from hosting.spec.limits import tenant_or_error
from hosting.spec.models import DatabaseDeployment, Spec
from hosting.stacks.containers import POSTGRES_CAPS

DRILL_USER = "drill"
READY_TIMEOUT_S = 180.0
LABEL = "hosting.drill"
# A drill must not starve the tenants' own containers on the same host.
DRILL_MEMORY, DRILL_CPUS = "1g", "1"


@dataclass(frozen=True)
class DrillResult:
    tenant: str
    deployment: str
    backup: str  # the file's name
    started: datetime  # naive UTC
    finished: datetime
    seconds: float
    ok: bool
    reason: str | None
    tables_checked: int
    rows_checked: int


class DrillFailed(HostingError):
    pass


def _docker(spec: Spec, *args: str, timeout: float = 120, env: dict[str, str] | None = None) -> str:
    return docker_checked(spec, *args, failure=DrillFailed, timeout=timeout, env=env)


def drill_one(
    spec: Spec,
    state_dir: Path,
    backup: files.BackupFile,
    *,
    engine: Engine | None = None,
    timeout_s: float = 3600.0,
) -> DrillResult:
    """Restore `backup` into a throwaway container and compare row counts. Never raises for
    a failed drill: the result says why."""
    started = datetime.now(UTC).replace(tzinfo=None)
    clock = time.monotonic()
    checked = (0, 0)
    try:
        checked = _drill(spec, state_dir, backup, engine, timeout_s)
        ok, reason = True, None
    except HostingError as exc:
        ok, reason = False, exc.message
    return DrillResult(
        backup.tenant, backup.deployment, backup.name, started,
        datetime.now(UTC).replace(tzinfo=None), round(time.monotonic() - clock, 3),
        ok, reason, *checked,
    )  # fmt: skip


def _drill(
    spec: Spec,
    state_dir: Path,
    backup: files.BackupFile,
    engine: Engine | None,
    timeout_s: float,
) -> tuple[int, int]:
    meta = files.read_meta(backup.path)
    reading.check(backup.path, backup.sha256)  # damage is found here, before any container
    image = str(meta.get("image") or "")
    host = ""  # the platform's engine
    if not image or spec.platform.target == "swarm":
        # A backup from before images were recorded takes the running database's. On a
        # swarm the image may be only on the database's node (it goes where its task may
        # run): the drill runs there, or on the manager when the database is not running.
        engine = engine or Engine(spec.platform.docker.host)
        try:
            running = locate(spec, engine, backup.tenant, backup.deployment)
        except HostingError:
            if not image:
                raise
        else:
            image, host = image or running.image, running.host
    env = {"DOCKER_HOST": host} if host else {}
    dbname = str(meta.get("database") or "postgres")
    name = f"hosting-drill-{secrets.token_hex(6)}"
    caps = [arg for cap in POSTGRES_CAPS for arg in ("--cap-add", cap)]
    try:
        # POSTGRES_PASSWORD without a value: docker takes it from its own environment, so it
        # is in no argv. The server is never reachable from anywhere: --network none.
        _docker(
            spec, "run", "-d", "--name", name, "--network", "none",
            "--label", f"{LABEL}={backup.tenant}/{backup.deployment}",
            "--read-only", "--tmpfs", "/tmp:rw,nosuid,size=64m",
            "--tmpfs", "/var/run/postgresql:rw,nosuid,size=16m",
            "--cap-drop", "ALL", *caps, "--security-opt", "no-new-privileges",
            "--pids-limit", "512", "--memory", DRILL_MEMORY, "--cpus", DRILL_CPUS,
            "--mount", "type=volume,dst=/var/lib/postgresql/data",
            "-e", "POSTGRES_PASSWORD", "-e", f"POSTGRES_USER={DRILL_USER}",
            "-e", f"POSTGRES_DB={dbname}", "-e", "PGDATA=/var/lib/postgresql/data/pgdata",
            image,
            env={**env, "POSTGRES_PASSWORD": secrets.token_urlsafe(24)},
        )  # fmt: skip
        target = Target(backup.tenant, backup.deployment, name, DRILL_USER, dbname, host=host)
        _wait_ready(spec, target)
        args = _exec_args(
            target, "pg_restore", "--no-owner", "--no-acl", "--exit-on-error",
            "--single-transaction", "-U", DRILL_USER, "-d", dbname, stdin=True,
        )  # fmt: skip
        code, stderr = reading.feed(
            args, docker_env(spec), reading.plaintext(backup.path), timeout_s, "the drill's restore"
        )
        if code != 0:
            raise DrillFailed(f"pg_restore failed (exit {code}): {_summary(stderr, target)}")
        return _compare(spec, target, meta.get("row_counts"))
    finally:
        subprocess.run(
            ["docker", "rm", "-f", "-v", name], capture_output=True, timeout=120,
            env={**docker_env(spec), **env}, check=False,
        )  # fmt: skip


def _psql(spec: Spec, target: Target, sql: str, timeout: float = 600) -> tuple[int, str, str]:
    args = _exec_args(
        target, "psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
        "-U", target.user, "-d", target.dbname, "-c", sql,
    )  # fmt: skip
    try:
        out = subprocess.run(
            args, capture_output=True, timeout=timeout, env=docker_env(spec), check=False
        )
    except subprocess.TimeoutExpired:
        return 124, "", f"psql took over {timeout:g} s"
    return out.returncode, out.stdout.decode(errors="replace"), _summary(out.stderr, target)


def _env_of(spec: Spec, target: Target) -> dict[str, str]:
    """The environment of a docker command that acts on the drill's server, where it runs."""
    return {**docker_env(spec), **({"DOCKER_HOST": target.host} if target.host else {})}


def _wait_ready(spec: Spec, target: Target) -> None:
    """Until the final server answers: PID 1 is postgres itself (the entrypoint's temporary
    initdb server runs under the script) and a query works."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    why = "no answer"
    env = _env_of(spec, target)
    while time.monotonic() < deadline:
        state = _docker(spec, "inspect", "-f", "{{.State.Status}}", target.container, env=env)
        if state in ("exited", "dead"):
            logs = subprocess.run(
                ["docker", "logs", "--tail", "3", target.container], capture_output=True,
                text=True, timeout=60, env=env, check=False,
            )  # fmt: skip
            last = [ln for ln in (logs.stdout + logs.stderr).splitlines() if ln.strip()]
            raise DrillFailed(f"the drill's server exited: {(last or ['no log'])[-1].strip()}")
        code, out, err = _psql(spec, target, "SELECT 1", timeout=30)
        pid1 = subprocess.run(
            ["docker", "exec", target.container, "cat", "/proc/1/comm"], capture_output=True,
            text=True, timeout=30, env=env, check=False,
        ).stdout.strip()  # fmt: skip
        if code == 0 and out.strip() == "1" and pid1 == "postgres":
            return
        why = err or f"PID 1 is {pid1 or 'unknown'}"
        time.sleep(1)
    raise DrillFailed(f"the drill's server did not answer within {READY_TIMEOUT_S:g} s: {why}")


def _compare(spec: Spec, target: Target, recorded: Any) -> tuple[int, int]:
    """(tables, rows) checked. Every table counted at backup time must have its count."""
    if not isinstance(recorded, dict) or not recorded:
        # An older backup with no counts, or an empty database: it restored and answers.
        return 0, 0
    code, out, err = _psql(spec, target, counts.count_sql(limit=None))
    if code != 0:
        raise DrillFailed(f"counting rows in the restored copy failed: {err}")
    found = counts.parse(out.splitlines())
    rows = 0
    for table, want in sorted(recorded.items()):
        got = found.get(table)
        if got is None:
            raise DrillFailed(f"table {table} is missing from the restored copy")
        if got != want:
            raise DrillFailed(f"table {table} has {got} rows restored, {want} when backed up")
        rows += int(want)
    return len(recorded), rows


def record(store_path: Path, result: DrillResult) -> None:
    with store.connect(store_path) as conn:
        conn.execute(
            "INSERT INTO restore_drills VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                result.tenant, result.deployment, result.backup, result.started,
                result.finished, result.seconds, result.ok, result.reason,
                result.tables_checked, result.rows_checked,
            ],
        )  # fmt: skip


def drill_all(
    spec: Spec,
    state_dir: Path,
    store_path: Path,
    *,
    tenant: str | None = None,
    engine: Engine | None = None,
) -> list[DrillResult]:
    """The newest backup of every database deployment (of one tenant, or all) drilled and
    recorded; a deployment with no backup has nothing to drill."""
    if tenant is not None:
        tenant_or_error(spec, tenant)
    out = []
    for tid, t in spec.tenants.items():
        if tenant is not None and tid != tenant:
            continue
        for did, dep in t.deployments.items():
            if not isinstance(dep, DatabaseDeployment):
                continue
            found = files.list_backups(state_dir, tid, did)
            if not found:
                continue
            result = drill_one(spec, state_dir, found[-1], engine=engine)
            record(store_path, result)
            out.append(result)
    return out


def _rows(conn: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> list[DrillResult]:
    # The newest drill per (tenant, deployment, backup).
    found = conn.execute(
        "SELECT tenant, deployment, backup, started_at, finished_at, seconds, ok, reason, "
        f"tables_checked, rows_checked FROM restore_drills {where} "
        "QUALIFY row_number() OVER (PARTITION BY tenant, deployment, backup "
        "ORDER BY started_at DESC) = 1 ORDER BY tenant, deployment, started_at",
        params,
    ).fetchall()
    return [DrillResult(*row) for row in found]


def latest_by_backup(
    store_path: Path, tenant: str | None = None
) -> dict[tuple[str, str, str], DrillResult]:
    """The newest drill of each backup file, by (tenant, deployment, file name)."""
    if not store_path.exists():
        return {}
    where, params = ("WHERE tenant = ?", [tenant]) if tenant else ("", [])
    with store.connect(store_path, read_only=True) as conn:
        if not _has_table(conn):
            return {}
        return {(r.tenant, r.deployment, r.backup): r for r in _rows(conn, where, params)}


def latest_by_deployment(conn: duckdb.DuckDBPyConnection, tenant: str) -> dict[str, DrillResult]:
    """The newest drill of each of a tenant's databases, whichever backup it was of."""
    if not _has_table(conn):
        return {}
    out: dict[str, DrillResult] = {}
    for r in _rows(conn, "WHERE tenant = ?", [tenant]):
        if r.deployment not in out or r.started > out[r.deployment].started:
            out[r.deployment] = r
    return out


def _has_table(conn: duckdb.DuckDBPyConnection) -> bool:
    found = conn.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'restore_drills'"
    ).fetchone()
    return bool(found and found[0])


def newest_drill_time(store_path: Path) -> datetime | None:
    if not store_path.exists():
        return None
    with store.connect(store_path, read_only=True) as conn:
        if not _has_table(conn):
            return None
        found = conn.execute("SELECT max(finished_at) FROM restore_drills").fetchone()
    return found[0] if found else None


def describe(result: DrillResult | None) -> str:
    """One phrase for a table cell or a status line."""
    if result is None:
        return "never restored"
    when = result.finished.strftime("%Y-%m-%d %H:%M") + "Z"
    if result.ok:
        return f"restored ok {when} ({result.tables_checked} tables, {result.seconds:.0f} s)"
    return f"restore FAILED {when}: {result.reason}"


@dataclass(frozen=True)
class BackupState:
    """One database's newest backup and its newest drill, for `status` and reports."""

    tenant: str
    deployment: str
    newest_backup: str | None
    backup_finished: datetime | None
    drill: DrillResult | None

    def line(self) -> str:
        ref = f"{self.tenant}/{self.deployment}"
        if self.newest_backup is None:
            return f"backup: {ref}: no backup yet"
        when = (
            self.backup_finished.strftime("%Y-%m-%d %H:%M") + "Z" if self.backup_finished else "?"
        )
        drilled = describe(self.drill)
        if self.drill is not None and self.drill.backup != self.newest_backup:
            drilled += f" (of the older {self.drill.backup})"
        return f"backup: {ref}: newest {when}; {drilled}"


def backup_states(
    spec: Spec, state_dir: Path, store_path: Path, tenants: list[str]
) -> list[BackupState]:
    """Every database deployment of these tenants: newest backup on disk, newest drill."""
    out = []
    for tid in tenants:
        t = spec.tenants.get(tid)
        if t is None:
            continue
        dbs = [d for d, dep in t.deployments.items() if isinstance(dep, DatabaseDeployment)]
        if not dbs:
            continue
        last = _latest_for(store_path, tid)
        for did in dbs:
            found = files.list_backups(state_dir, tid, did)
            newest = found[-1] if found else None
            out.append(
                BackupState(
                    tid, did, newest.name if newest else None,
                    newest.finished if newest else None, last.get(did),
                )
            )  # fmt: skip
    return out


def _latest_for(store_path: Path, tenant: str) -> dict[str, DrillResult]:
    if not store_path.exists():
        return {}
    with store.connect(store_path, read_only=True) as conn:
        return latest_by_deployment(conn, tenant)
