"""Backup and restore through the running database container (`docker exec`).

Inside the container the local socket is trusted (the image's initdb uses --auth-local=trust),
so pg_dump and pg_restore connect as POSTGRES_USER with no password: the password is never
read into an argv, a file, a log line or an error. Only POSTGRES_USER and POSTGRES_DB are
taken from the container's environment; the rest of it stays with Docker.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from hosting.backups import counts, crypto, files, reading
from hosting.errors import HostingError, NotFoundError, ProviderError, UsageError
from hosting.metering.engine import Engine, EngineUnreachable
from hosting.provider.runtime import docker_env
from hosting.spec import names
from hosting.spec.limits import tenant_or_error
from hosting.spec.models import DatabaseDeployment, Spec

DEFAULT_KEEP = 7
CHUNK = 1 << 20
# Finds the server's socket (the test image uses /tmp, the upstream image /var/run/postgresql)
# and runs the given client with PGHOST set to it.
SOCKET_SCRIPT = (
    'for d in /var/run/postgresql /tmp; do if [ -S "$d/.s.PGSQL.5432" ]; then '
    'PGHOST="$d"; export PGHOST; exec "$@"; fi; done; '
    'echo "no PostgreSQL socket in /var/run/postgresql or /tmp (is the server up?)" >&2; exit 2'
)


@dataclass(frozen=True)
class Target:
    tenant: str
    deployment: str
    container: str  # id
    user: str
    dbname: str
    image: str = ""  # as the container was created with: a restore drill runs the same one
    secrets: tuple[str, ...] = field(default=(), repr=False)  # only to scrub messages
    # The engine that runs it ("": platform.docker.host): on a swarm, its task's node.
    host: str = ""


@dataclass(frozen=True)
class BackupOutcome:
    tenant: str
    deployment: str
    ok: bool
    file: files.BackupFile | None = None
    removed: tuple[str, ...] = ()
    error: str | None = None
    skipped: bool = False
    offsite: str | None = None  # the key of the off-host copy (platform.backups.s3)


def database_deployment(spec: Spec, tenant: str, deployment: str) -> DatabaseDeployment:
    found = tenant_or_error(spec, tenant)
    dep = found.deployments.get(deployment)
    if dep is None:
        raise NotFoundError(
            f"tenant `{tenant}` has no deployment `{deployment}`",
            f"its deployments: {', '.join(found.deployments) or 'none'}",
        )
    if not isinstance(dep, DatabaseDeployment):
        raise UsageError(
            f"{tenant}/{deployment} is a {dep.type} deployment, not a database",
            "only `type: database` deployments have backups",
        )
    return dep


def locate(spec: Spec, engine: Engine, tenant: str, deployment: str) -> Target:
    """The running database container of tenant/deployment (its primary), on whichever
    engine runs it (hosting.provider.tasks: on a swarm, its task's node)."""
    from hosting.provider.tasks import deployment_containers

    database_deployment(spec, tenant, deployment)
    # By name as well as labels (the lookup's rule): another platform on the same engine may
    # have a tenant and a database of the same names.
    mine = [
        p
        for p in deployment_containers(spec, tenant, deployment, engine)
        if p.container.kind == "database"
    ]
    running = [p for p in mine if p.running]
    if not running:
        state = f" (it is {mine[0].container.state})" if mine else ""
        raise ProviderError(
            f"the database container of {tenant}/{deployment} is not running{state}",
            "run `hosting apply` (or start it) and try again",
        )
    placed = running[0]
    info = (engine if placed.host == engine.host else Engine(placed.host)).inspect(
        placed.container.id
    )
    env = dict(
        item.split("=", 1) for item in (info.get("Config") or {}).get("Env") or [] if "=" in item
    )
    return Target(
        tenant,
        deployment,
        placed.container.id,
        env.get("POSTGRES_USER") or "postgres",
        env.get("POSTGRES_DB") or names.database_name(deployment),
        str((info.get("Config") or {}).get("Image") or ""),
        tuple(v for k, v in env.items() if "PASSWORD" in k.upper() and v),
        host=placed.host,
    )


def _exec_args(target: Target, *client: str, stdin: bool = False) -> list[str]:
    if shutil.which("docker") is None:
        raise ProviderError("the docker CLI is not installed", "install Docker (docker.io)")
    flags = ["-i"] if stdin else []
    # -H before the command: the node that runs it, whatever DOCKER_HOST the caller passes
    where = ["-H", target.host] if target.host else []
    return [
        "docker", *where, "exec", *flags, target.container,
        "sh", "-c", SOCKET_SCRIPT, "sh", *client,
    ]  # fmt: skip


def _summary(stderr: bytes, target: Target) -> str:
    """The last few lines of a client's stderr, with any secret value blotted out."""
    text = stderr.decode(errors="replace")
    for secret in target.secrets:
        text = text.replace(secret, "***")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    out = "; ".join(lines[-3:]) or "no message"
    return out if len(out) <= 400 else out[:397] + "..."


@contextmanager
def _locked(folder: Path, ref: str) -> Iterator[None]:
    with (folder / ".lock").open("a") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ProviderError(f"a backup of {ref} is already running") from None
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _server_version(spec: Spec, target: Target) -> str | None:
    args = _exec_args(
        target, "psql", "-X", "-A", "-t", "-U", target.user, "-d", target.dbname,
        "-c", "SHOW server_version",
    )  # fmt: skip
    try:
        out = subprocess.run(
            args, capture_output=True, timeout=60, env=docker_env(spec), check=False
        )
    except subprocess.TimeoutExpired:
        return None
    text = out.stdout.decode(errors="replace").strip()
    return text.split()[0] if out.returncode == 0 and text else None


def _drain(stream: IO[bytes], sink: list[bytes]) -> None:
    sink.append(stream.read())


def backup_one(
    spec: Spec,
    state_dir: Path,
    tenant: str,
    deployment: str,
    *,
    keep: int = DEFAULT_KEEP,
    engine: Engine | None = None,
    timeout_s: float = 3600.0,
    spec_dir: Path | None = None,
) -> BackupOutcome:
    """One `pg_dump -Fc` of tenant/deployment into its folder, then retention, then the
    off-host copy when `platform.backups.s3` is set (`spec_dir` resolves its `file:` secret).
    Raises a HostingError (and leaves no .dump) when the dump fails; a failed copy is an
    outcome that is not ok, its local backup kept."""
    try:
        done = _backup(spec, state_dir, tenant, deployment, keep, engine, timeout_s)
    except OSError as exc:  # disk full, permissions: the user's to fix, not a bug
        folder = files.deployment_dir(state_dir, tenant, deployment)
        raise ProviderError(
            f"cannot write the backup of {tenant}/{deployment} in {folder}:"
            f" {exc.strerror or type(exc).__name__}"
        ) from None
    s3 = spec.platform.backups.s3 if spec.platform.backups else None
    if s3 is None or done.file is None:
        return done
    from dataclasses import replace

    from hosting.backups import offsite

    try:
        key = offsite.upload(s3, spec_dir or Path.cwd(), done.file)
    except HostingError as exc:
        return replace(done, ok=False, error=f"backed up locally, not off-host: {exc.message}")
    return replace(done, offsite=key)


def _backup(
    spec: Spec,
    state_dir: Path,
    tenant: str,
    deployment: str,
    keep: int,
    engine: Engine | None,
    timeout_s: float,
) -> BackupOutcome:
    if keep < 1:
        raise UsageError(f"--keep must be at least 1, not {keep}")
    engine = engine or Engine(spec.platform.docker.host)
    target = locate(spec, engine, tenant, deployment)
    folder = files.deployment_dir(state_dir, tenant, deployment)
    folder.mkdir(parents=True, exist_ok=True)
    ref = f"{tenant}/{deployment}"
    passphrase = reading.platform_passphrase()  # refuse before anything is written
    with _locked(folder, ref):
        version = _server_version(spec, target)
        started = datetime.now(UTC).replace(tzinfo=None)
        name = files.stamp(started) + files.SUFFIX
        final = folder / name
        tmp = folder / ("." + name + files.PARTIAL)
        digest = hashlib.sha256()
        size = plain = 0
        # One deadline for the snapshot session and the dump: a hung one must not hold the
        # agent's loop forever.
        expired = threading.Event()
        running: list[subprocess.Popen[bytes]] = []

        def stop() -> None:
            expired.set()
            for proc in running:
                proc.kill()

        timer = threading.Timer(timeout_s, stop)
        timer.start()
        session = counts.SnapshotSession(
            _exec_args(
                target, "psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
                "-U", target.user, "-d", target.dbname, stdin=True,
            ),
            docker_env(spec),
            lambda err: f"pg_dump of {ref} failed: {_summary(err, target)}",
        )  # fmt: skip
        running.append(session.proc)
        try:
            try:
                session.start()
            except ProviderError:
                if expired.is_set():
                    raise ProviderError(
                        f"pg_dump of {ref} took over {timeout_s:g} s and was stopped"
                    ) from None
                raise
            args = _exec_args(
                target, "pg_dump", "-Fc", f"--snapshot={session.snapshot}",
                "-U", target.user, "-d", target.dbname,
            )  # fmt: skip
            with (
                tmp.open("wb") as out,
                subprocess.Popen(
                    args,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=docker_env(spec),
                ) as proc,
            ):
                running.append(proc)
                if expired.is_set():
                    proc.kill()
                assert proc.stdout is not None and proc.stderr is not None
                errors: list[bytes] = []
                reader = threading.Thread(target=_drain, args=(proc.stderr, errors), daemon=True)
                reader.start()
                stdout = proc.stdout

                def dumped() -> Iterator[bytes]:
                    nonlocal plain
                    while chunk := stdout.read(CHUNK):
                        plain += len(chunk)
                        yield chunk

                for sealed in crypto.seal(dumped(), passphrase):
                    out.write(sealed)
                    digest.update(sealed)
                    size += len(sealed)
                code = proc.wait()
                reader.join(timeout=10)
                out.flush()
                os.fsync(out.fileno())
            session.close()
            stderr = b"".join(errors)
            if expired.is_set():
                raise ProviderError(f"pg_dump of {ref} took over {timeout_s:g} s and was stopped")
            if code != 0:
                raise ProviderError(
                    f"pg_dump of {ref} failed (exit {code}): {_summary(stderr, target)}",
                    "is the database container running and healthy? see `hosting status`",
                )
            if plain == 0:
                raise ProviderError(f"pg_dump of {ref} wrote nothing")
            tmp.replace(final)
            files.fsync_dir(folder)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            timer.cancel()
            session.kill()
        finished = datetime.now(UTC).replace(tzinfo=None)
        files.write_sidecar(
            final,
            {
                "tenant": tenant,
                "deployment": deployment,
                "database": target.dbname,
                "format": "pg_dump -Fc",
                "encryption": crypto.DESCRIPTION,
                "size_bytes": size,
                "dump_bytes": plain,
                "sha256": digest.hexdigest(),
                "started": files.iso(started),
                "finished": files.iso(finished),
                "pg_version": version,
                "image": target.image,
                "row_counts": session.counts,
            },
        )
        removed = files.prune(folder, keep)
    listed = [b for b in files.list_backups(state_dir, tenant, deployment) if b.name == name]
    return BackupOutcome(tenant, deployment, True, listed[0] if listed else None, tuple(removed))


def backup_all(
    spec: Spec,
    state_dir: Path,
    *,
    tenant: str | None = None,
    keep: int = DEFAULT_KEEP,
    engine: Engine | None = None,
    spec_dir: Path | None = None,
) -> list[BackupOutcome]:
    """Every database deployment (of one tenant, or all): one failure never stops the
    others; deployments marked `stopped: true` are skipped."""
    if tenant is not None:
        tenant_or_error(spec, tenant)
    engine = engine or Engine(spec.platform.docker.host)
    out: list[BackupOutcome] = []
    for tid, t in spec.tenants.items():
        if tenant is not None and tid != tenant:
            continue
        for did, dep in t.deployments.items():
            if not isinstance(dep, DatabaseDeployment):
                continue
            if dep.stopped:
                out.append(BackupOutcome(tid, did, True, skipped=True, error="stopped"))
                continue
            try:
                out.append(
                    backup_one(
                        spec, state_dir, tid, did, keep=keep, engine=engine, spec_dir=spec_dir
                    )
                )
            except EngineUnreachable:
                raise  # the same for every deployment: the caller reports it once
            except HostingError as exc:
                out.append(BackupOutcome(tid, did, False, error=exc.message))
    return out


def restore(
    spec: Spec,
    state_dir: Path,
    tenant: str,
    deployment: str,
    file: str,
    *,
    confirmed: bool,
    engine: Engine | None = None,
    timeout_s: float = 3600.0,
) -> Path:
    """Replace the database's contents with a dump (`pg_restore --clean --if-exists` in one
    transaction: on error nothing changes). Refuses unless confirmed."""
    database_deployment(spec, tenant, deployment)
    path = files.resolve(state_dir, tenant, deployment, file)
    ref = f"{tenant}/{deployment}"
    if not confirmed:
        raise UsageError(
            f"restoring {path.name} replaces the current contents of {ref}",
            "add --yes to go ahead",
        )
    expected = next(
        (b.sha256 for b in files.list_backups(state_dir, tenant, deployment) if b.path == path),
        None,
    )
    reading.check(path, expected)  # the whole file, before anything reaches the database
    engine = engine or Engine(spec.platform.docker.host)
    target = locate(spec, engine, tenant, deployment)
    args = _exec_args(
        target, "pg_restore", "--clean", "--if-exists", "--single-transaction", "--no-owner",
        "-U", target.user, "-d", target.dbname, stdin=True,
    )  # fmt: skip
    code, stderr = reading.feed(
        args, docker_env(spec), reading.plaintext(path), timeout_s, f"pg_restore into {ref}"
    )
    if code != 0:
        raise ProviderError(
            f"pg_restore into {ref} failed (exit {code}), nothing was changed:"
            f" {_summary(stderr, target)}"
        )
    return path
