"""A PostgreSQL major upgrade, run by apply before the engine (hosting.databases.upgrade
decides which). For one database:

1. its read replicas and the server are stopped, and the old version's server is started
   again on the old volume in a hardened container with no network: nothing can write
   while the data is copied, and the old volume is only read (writes stop here: the
   database is down from this step until the engine starts the new server);
2. a new volume, `<volume>_pg<new>` (in the tenant's bounded filesystem when there is
   one), and the new version's server on it, in the same kind of container;
3. `pg_dumpall` (the old server's own) piped into `psql` (the new one's): no copy of the
   data on the host's disk, no password on any command line (both use their local socket);
4. the exact row count of every user table of every database compared, old against new;
5. only then: the replicas' copies emptied (they clone the new primary when the engine
   starts them), the WAL archive and base backups of the old version moved aside (a new
   version cannot replay them; the new server starts its own), and the caller records the
   new version and volume, so the program switches the container to them.

A failure before 5 removes the new volume and starts the old server and its replicas again,
as they were. The old volume is never written; `backup prune` removes it (RETIRED).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hosting.backups import files, pitr, pitr_replicas, wal_seal
from hosting.backups.counts import count_sql, parse
from hosting.backups.pg import SOCKET_SCRIPT, _locked, locate
from hosting.databases.upgrade import Upgrade, volume_name
from hosting.errors import HostingError, ProviderError
from hosting.metering.engine import Engine
from hosting.provider.runtime import docker_checked, docker_env, remove_container
from hosting.provider.volume_quota import driver_opts
from hosting.spec.models import Spec
from hosting.stacks import wal_archive
from hosting.stacks.containers import POSTGRES_CAPS, labels
from hosting.stacks.settings import DatabaseAccess

DATA = "/var/lib/postgresql/data"
PGDATA = f"{DATA}/pgdata"
READY_TIMEOUT_S = 180.0
COPY_TIMEOUT_S = 3600.0
RETIRED = "retired.json"  # in a retired folder: what `backup prune` deletes
LABEL = "hosting.upgrade"


class UpgradeFailed(ProviderError):
    pass


@dataclass(frozen=True)
class Outcome:
    upgrade: Upgrade
    volume: str  # the new one
    retired_volume: str
    retired_folder: Path  # the old version's WAL archive and base backups
    tables: int
    rows: int


def _docker(spec: Spec, *args: str, timeout: float = 300, env: dict[str, str] | None = None) -> str:
    return docker_checked(spec, *args, failure=UpgradeFailed, timeout=timeout, env=env)


def _hardened(name: str, ref: str, volume: str, memory: int) -> list[str]:
    """The database container's hardening, with no network at all."""
    return [
        "--name", name, "--label", f"{LABEL}={ref}", "--network", "none", "--read-only",
        "--tmpfs", "/tmp:rw,nosuid,size=64m", "--tmpfs", "/var/run/postgresql:rw,nosuid,size=16m",
        "--cap-drop", "ALL", *(f"--cap-add={c}" for c in POSTGRES_CAPS),
        "--security-opt", "no-new-privileges", "--pids-limit", "512",
        *(["--memory", str(memory), "--memory-swap", str(memory)] if memory else []),
        "--mount", f"type=volume,source={volume},target={DATA}",
    ]  # fmt: skip


def _sql(spec: Spec, container: str, user: str, db: str, sql: str) -> list[str]:
    out = _docker(
        spec, "exec", container, "sh", "-c", SOCKET_SCRIPT, "sh",
        "psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-U", user, "-d", db, "-c", sql,
        timeout=COPY_TIMEOUT_S,
    )  # fmt: skip
    return [line for line in out.splitlines() if line.strip()]


def _wait_ready(spec: Spec, name: str, user: str) -> None:
    """Until the server answers on TCP (the entrypoints' own first-start server listens on
    the socket only, and is stopped again before the real one starts)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        state = _docker(spec, "inspect", "-f", "{{.State.Status}}", name)
        if state in ("exited", "dead"):
            raise UpgradeFailed(f"the server in {name} stopped: {_last_log(spec, name)}")
        probe = subprocess.run(
            ["docker", "exec", name, "pg_isready", "-q", "-h", "127.0.0.1", "-U", user],
            capture_output=True, timeout=60, env=docker_env(spec), check=False,
        )  # fmt: skip
        if probe.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise UpgradeFailed(f"{name} did not answer within {READY_TIMEOUT_S:g} s")
        time.sleep(1)


def _last_log(spec: Spec, name: str) -> str:
    logs = subprocess.run(
        ["docker", "logs", "--tail", "20", name], capture_output=True, text=True, timeout=60,
        env=docker_env(spec), check=False,
    )  # fmt: skip
    lines = [ln.strip() for ln in (logs.stdout + logs.stderr).splitlines() if ln.strip()]
    fatal = [ln for ln in lines if "FATAL" in ln or "PANIC" in ln or "ERROR" in ln]
    return (fatal or lines or ["no log"])[-1][:300]


def counts(spec: Spec, container: str, user: str) -> dict[str, int]:
    """Exact row counts of every user table of every database: `db:schema.table` → rows."""
    dbs = _sql(spec, container, user, "postgres",
               "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate "
               "ORDER BY 1")  # fmt: skip
    out: dict[str, int] = {}
    for db in dbs:
        for table, rows in parse(_sql(spec, container, user, db, count_sql(None))).items():
            out[f"{db}:{table}"] = rows
    return out


def _copy(spec: Spec, old: str, new: str, user: str) -> None:
    """pg_dumpall of the old server into psql on the new one, streamed. The new server's
    initdb made the owner role already: its CREATE ROLE is the one error expected."""
    dump = subprocess.Popen(
        ["docker", "exec", old, "sh", "-c", SOCKET_SCRIPT, "sh", "pg_dumpall", "-U", user],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=docker_env(spec),
    )  # fmt: skip
    assert dump.stdout is not None and dump.stderr is not None
    dump_err: list[bytes] = []
    err = dump.stderr
    reader = threading.Thread(target=lambda: dump_err.append(err.read()), daemon=True)
    reader.start()
    restore = subprocess.run(
        ["docker", "exec", "-i", new, "sh", "-c", SOCKET_SCRIPT, "sh",
         "psql", "-X", "-q", "-U", user, "-d", "postgres"],
        stdin=dump.stdout, capture_output=True, timeout=COPY_TIMEOUT_S, env=docker_env(spec),
        check=False,
    )  # fmt: skip
    dump.stdout.close()
    code = dump.wait(timeout=60)
    reader.join(timeout=10)
    if code != 0:
        text = b"".join(dump_err).decode(errors="replace").strip().splitlines()
        raise UpgradeFailed(f"pg_dumpall failed (exit {code}): {(text or ['no message'])[-1]}")
    expected = f'role "{user}" already exists'
    errors = [
        ln.strip()
        for ln in restore.stderr.decode(errors="replace").splitlines()
        if "ERROR:" in ln and expected not in ln
    ]
    if restore.returncode != 0 or errors:
        raise UpgradeFailed(
            f"restoring into the new version failed: {(errors or ['psql exit'])[0][:300]}"
        )


def migrate(
    spec: Spec,
    state_dir: Path,
    up: Upgrade,
    access: DatabaseAccess,
    *,
    device: str | None,
    engine: Engine | None = None,
) -> Outcome:
    """Steps 1-5 above for `up`; `access` is the database's before it (the old volume's),
    `device` the new volume's directory in the tenant's bounded filesystem (None: plain).
    Under the database's backup lock and its WAL sealing lock, as a point-in-time restore:
    no dump, base backup or seal runs meanwhile (one running makes this fail, untouched)."""
    home = files.deployment_dir(state_dir, up.tenant, up.deployment)
    home.mkdir(parents=True, exist_ok=True)
    with _locked(home, up.ref), wal_seal.sealing_held(state_dir, up.tenant, up.deployment):
        return _migrate(spec, state_dir, up, access, device, engine)


def _migrate(
    spec: Spec,
    state_dir: Path,
    up: Upgrade,
    access: DatabaseAccess,
    device: str | None,
    engine: Engine | None,
) -> Outcome:
    engine = engine or Engine(spec.platform.docker.host)
    ref, platform = up.ref, spec.platform.name
    try:
        target = locate(spec, engine, up.tenant, up.deployment)
    except HostingError as exc:
        raise UpgradeFailed(
            f"{ref}: PostgreSQL {up.old} → {up.new} needs its server running: {exc.message}",
            "start it (`stopped: false`, apply without the version change), then upgrade",
        ) from None
    info = engine.inspect(target.container)
    memory = int((info.get("HostConfig") or {}).get("Memory") or 0)
    # the old server runs as its data's owner (an upstream image starts as root)
    owner = _docker(spec, "exec", target.container, "stat", "-c", "%u:%g", PGDATA)
    old_volume = volume_name(platform, up.tenant, up.deployment, access)
    new_volume = f"{volume_name(platform, up.tenant, up.deployment, None)}_pg{up.new}"
    new_image = spec.platform.images.postgres_for(up.new)
    token = secrets.token_hex(4)
    old_name, new_name = f"hosting-upgrade-old-{token}", f"hosting-upgrade-new-{token}"
    standbys = pitr_replicas.standbys(spec, engine, up.tenant, up.deployment)
    _drop_volume(spec, new_volume, target.image)  # a failed attempt's, never in use
    pitr_replicas.stop(spec, standbys)
    _docker(spec, "stop", "-t", "60", target.container, timeout=120)
    try:
        _docker(
            spec, "run", "-d", *_hardened(old_name, ref, old_volume, memory),
            "--user", owner, "--entrypoint", "postgres", target.image, "-D", PGDATA,
            "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=/tmp",
        )  # fmt: skip
        _wait_ready(spec, old_name, target.user)
        before = counts(spec, old_name, target.user)
        _create_volume(spec, up, new_volume, device)
        _docker(
            spec, "run", "-d", *_hardened(new_name, ref, new_volume, memory),
            "-e", f"POSTGRES_USER={target.user}", "-e", "POSTGRES_PASSWORD",
            "-e", "POSTGRES_DB=postgres", "-e", f"PGDATA={PGDATA}", new_image,
            env={"POSTGRES_PASSWORD": access.password},  # from the environment, not argv
        )  # fmt: skip
        _wait_ready(spec, new_name, target.user)
        _copy(spec, old_name, new_name, target.user)
        after = counts(spec, new_name, target.user)
        if after != before:
            differ = sorted(k for k in before | after if before.get(k) != after.get(k))
            raise UpgradeFailed(
                f"row counts differ after the copy in {', '.join(differ[:5])}"
                f" ({len(differ)} tables)"
            )
        for name in (new_name, old_name):  # a clean shutdown checkpoints
            _docker(spec, "stop", "-t", "120", name, timeout=180)
            code = _docker(spec, "inspect", "-f", "{{.State.ExitCode}}", name)
            if code != "0":
                raise UpgradeFailed(f"{name} did not shut down cleanly (exit {code})")
    except HostingError as exc:
        remove_container(spec, new_name)
        remove_container(spec, old_name)
        with contextlib.suppress(HostingError):  # the failure below says what happened
            _drop_volume(spec, new_volume, target.image)
        with contextlib.suppress(HostingError):
            _docker(spec, "start", target.container)
            _wait_ready(spec, target.container, target.user)
        pitr_replicas.start_again(spec, standbys)
        raise UpgradeFailed(
            f"{ref}: PostgreSQL {up.old} → {up.new} failed, the old server is serving again"
            f" on its untouched volume: {exc.message}",
            "fix the cause and apply again (or set the version back)",
        ) from None
    finally:
        remove_container(spec, old_name)
        remove_container(spec, new_name)
    for s in standbys:  # their copies are of the old version: cloned afresh on start
        _empty_replica(spec, target.image, s.volume, ref)
    folder = _retire(state_dir, up, old_volume, target.image)
    return Outcome(up, new_volume, old_volume, folder, len(before), sum(before.values()))


def _create_volume(spec: Spec, up: Upgrade, name: str, device: str | None) -> None:
    """Exactly as the program declares it (labels, driver options), so the engine adopts
    it as it is."""
    opts: list[str] = []
    if device is not None:
        Path(device).mkdir(exist_ok=True)
        opts = ["--driver", "local"]
        for k, v in driver_opts(device).items():
            opts += ["--opt", f"{k}={v}"]
    lab = [f"--label={k}={v}" for k, v in labels(up.tenant, up.deployment, "database").items()]
    _docker(spec, "volume", "create", *opts, *lab, name)


def _drop_volume(spec: Spec, name: str, image: str) -> None:
    """Remove a volume and, if it binds a directory, what is in it (Docker keeps a bound
    directory's contents; `image`, one with sh and find, empties it)."""
    found = subprocess.run(
        ["docker", "volume", "inspect", "-f", "{{json .Options}}", name], capture_output=True,
        text=True, timeout=60, env=docker_env(spec), check=False,
    )  # fmt: skip
    if found.returncode != 0:
        return
    options = json.loads(found.stdout or "null") or {}
    device = options.get("device") if options.get("o") == "bind" else None
    if device:
        # as root with only DAC_OVERRIDE: any owner's files, nothing else
        _docker(
            spec, "run", "--rm", "--network", "none", "--user", "0", "--cap-drop", "ALL",
            "--cap-add", "DAC_OVERRIDE", "--security-opt", "no-new-privileges",
            "--mount", f"type=volume,source={name},target=/v", "--entrypoint", "sh", image,
            "-c", "find /v -mindepth 1 -delete",
        )  # fmt: skip
    _docker(spec, "volume", "rm", name)
    if device:
        with contextlib.suppress(OSError):
            Path(device).rmdir()


def _empty_replica(spec: Spec, image: str, volume: str, ref: str) -> None:
    gone = subprocess.run(
        ["docker", "volume", "inspect", volume], capture_output=True, timeout=60,
        env=docker_env(spec), check=False,
    )  # fmt: skip
    if gone.returncode != 0:
        return
    _docker(
        spec, "run", "--rm", "--network", "none", "--label", f"{LABEL}={ref}",
        "--user", "0", "--cap-drop", "ALL", "--cap-add", "DAC_OVERRIDE",
        "--security-opt", "no-new-privileges",
        "--mount", f"type=volume,source={volume},target={DATA}", "--entrypoint", "sh", image,
        "-c", f'rm -rf "{PGDATA}" "{PGDATA}.partial"',
    )  # fmt: skip


def _retire(state_dir: Path, up: Upgrade, old_volume: str, image: str) -> Path:
    """The old version's WAL archive and base backups moved into a folder of their own (a
    new server would refuse to archive over segments of the same names), with a record of
    the old volume, for `backup prune`. A fresh, empty archive folder takes their place."""
    when = datetime.now(UTC).replace(tzinfo=None)
    folder = files.deployment_dir(state_dir, up.tenant, up.deployment) / (
        f"retired-pg{up.old}-{files.stamp(when)}"
    )
    folder.mkdir(parents=True)
    archive = pitr.archive_dir(state_dir, up.tenant, up.deployment)
    bases = pitr.base_dir(state_dir, up.tenant, up.deployment)
    for moved in (archive, bases):
        if moved.exists():
            moved.rename(folder / moved.name)
    wal_archive.prepare(archive)
    (folder / RETIRED).write_text(
        json.dumps(
            {"volume": old_volume, "version": up.old, "image": image, "upgraded_to": up.new,
             "retired": files.iso(when)},
            indent=1,
        )
    )  # fmt: skip
    return folder


def prune(spec: Spec, state_dir: Path, tenant: str, deployment: str) -> list[str]:
    """Delete what upgrades retired: the old volumes (when no container uses them) and the
    old versions' WAL and base backups. Returns what was removed."""
    import shutil

    removed: list[str] = []
    root = files.deployment_dir(state_dir, tenant, deployment)
    for record in sorted(root.glob(f"retired-pg*/{RETIRED}")) if root.is_dir() else []:
        retired = json.loads(record.read_text())
        volume = str(retired["volume"])
        used = _docker(spec, "ps", "-a", "-q", "--filter", f"volume={volume}")
        if used:
            continue  # still someone's data: left alone
        _drop_volume(spec, volume, str(retired["image"]))
        shutil.rmtree(record.parent)
        removed.append(volume)
    return removed
