"""Restore a database to a moment: base backup + archived WAL, built beside the live data.

1. the newest base backup that finished before the target is checked whole (checksum,
   every encrypted chunk) and unpacked into `<PGDATA>.restore-<stamp>`, a sibling of the
   data directory in the same volume, by a container with no network;
2. a second such container runs PostgreSQL on it with `recovery.signal`, the archive
   read-only (its sealed segments decrypted into a scratch folder beside it, wal_seal),
   `recovery_target_time` and `recovery_target_action=promote`, until it has left recovery
   and answers a query, then stops it cleanly;
3. only then is the database container stopped (its read replicas first: they hold the
   timeline the restore abandons), the directories renamed (the old one to
   `<PGDATA>.before-<stamp>`, kept until `backup prune`), and the container started again;
4. each read replica is cloned again from the restored primary (pitr_replicas); one that
   cannot be is reported, the primary restored and serving.
A failure in 1 or 2 removes the sibling and leaves the running database as it was.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from hosting.backups import files, pitr, pitr_replicas, reading, wal_seal
from hosting.backups.pg import Target, _locked, database_deployment, locate
from hosting.errors import HostingError, ProviderError, UsageError
from hosting.metering.engine import Engine
from hosting.provider.runtime import docker_checked, docker_env, remove_container
from hosting.spec.models import Spec

LABEL = "hosting.pitr"
SWITCH_WAIT_S = 60.0


class RestoreFailed(ProviderError):
    pass


class ReplicasNotCloned(ProviderError):
    """The primary is restored and serving; some of its read replicas are not."""


@dataclass(frozen=True)
class RestoreOutcome:
    tenant: str
    deployment: str
    target: datetime
    base: str  # the base backup's name
    previous: str  # where the replaced data directory now is, inside the volume
    replicas: tuple[str, ...] = ()  # the read replicas cloned again, streaming (their slots)


@dataclass(frozen=True)
class _Live:
    target: Target
    volume: str
    pgdata: PurePosixPath
    owner: str  # uid:gid of the data directory
    memory: int


def _docker(spec: Spec, *args: str, timeout: float = 300, stdin: bytes | None = None) -> str:
    return docker_checked(spec, *args, failure=RestoreFailed, timeout=timeout, stdin=stdin)


def _live(spec: Spec, engine: Engine, tenant: str, deployment: str) -> _Live:
    target = locate(spec, engine, tenant, deployment)
    info = engine.inspect(target.container)
    env = dict(
        item.split("=", 1) for item in (info.get("Config") or {}).get("Env") or [] if "=" in item
    )
    pgdata = PurePosixPath(env.get("PGDATA") or pitr.DATA_MOUNT)
    mounts: list[dict[str, Any]] = info.get("Mounts") or []
    volume = next(
        (str(m.get("Name")) for m in mounts if m.get("Destination") == str(pgdata.parent)), ""
    )
    if not volume or m_type(mounts, str(pgdata.parent)) != "volume":
        raise UsageError(
            f"{tenant}/{deployment} keeps its data at {pgdata}, not in a folder of its volume",
            "point-in-time restore needs PGDATA one level inside the volume, as apply sets it",
        )
    owner = _docker(spec, "exec", target.container, "stat", "-c", "%u:%g", str(pgdata))
    memory = int((info.get("HostConfig") or {}).get("Memory") or 0)
    return _Live(target, volume, pgdata, owner, memory)


def m_type(mounts: list[dict[str, Any]], destination: str) -> str:
    return next((str(m.get("Type")) for m in mounts if m.get("Destination") == destination), "")


def _hardened(live: _Live, name: str, ref: str) -> list[str]:
    """A container beside the database: no network, read-only root, no capabilities, as the
    data directory's owner, the database's volume at the same place."""
    return [
        "--name", name, "--label", f"{LABEL}={ref}", "--network", "none", "--read-only",
        "--tmpfs", "/tmp:rw,nosuid,size=64m", "--tmpfs", "/var/run/postgresql:rw,nosuid,size=16m",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--pids-limit", "512",
        "--user", live.owner,
        *(["--memory", str(live.memory), "--memory-swap", str(live.memory)] if live.memory else []),
        "--mount", f"type=volume,source={live.volume},target={live.pgdata.parent}",
    ]  # fmt: skip


def restore_to_time(
    spec: Spec,
    state_dir: Path,
    tenant: str,
    deployment: str,
    target_time: datetime,
    *,
    confirmed: bool,
    engine: Engine | None = None,
) -> RestoreOutcome:
    database_deployment(spec, tenant, deployment)
    ref = f"{tenant}/{deployment}"
    if not confirmed:
        raise UsageError(
            f"restoring {ref} to {pitr.iso(target_time)} replaces its whole data directory"
            " (every database and role in it); the current one is kept aside",
            "add --yes to go ahead",
        )
    bases = pitr.list_bases(state_dir, tenant, deployment)
    base = pitr.choose_base(bases, target_time)
    if base is None:
        oldest = min((b.finished for b in bases), default=None)
        raise RestoreFailed(
            f"no base backup of {ref} finished before {pitr.iso(target_time)}"
            + (f" (the oldest finished at {pitr.iso(oldest)})" if oldest else " (there is none)"),
            "nothing was changed; pick a later time",
        )
    reading.check(base.path, base.sha256)  # a damaged file is found before any container
    with (
        _locked(files.deployment_dir(state_dir, tenant, deployment), ref),
        wal_seal.sealing_held(state_dir, tenant, deployment),  # no segment moves meanwhile
    ):
        return _restore(spec, state_dir, tenant, deployment, target_time, base, engine)


def _restore(
    spec: Spec, state_dir: Path, tenant: str, deployment: str, target_time: datetime,
    base: pitr.BaseBackup, engine: Engine | None,
) -> RestoreOutcome:  # fmt: skip
    ref = f"{tenant}/{deployment}"
    engine = engine or Engine(spec.platform.docker.host)
    live = _live(spec, engine, tenant, deployment)
    _flush_wal(spec, state_dir, live.target, tenant, deployment)
    stamp = files.stamp(datetime.now(UTC).replace(tzinfo=None)).replace(".", "-")
    fresh = live.pgdata.with_name(f"{live.pgdata.name}.restore-{stamp}")
    kept = live.pgdata.with_name(f"{live.pgdata.name}.before-{stamp}")
    image = live.target.image
    archive = pitr.archive_dir(state_dir, tenant, deployment).resolve()
    token = secrets.token_hex(5)
    try:
        _unpack(spec, live, image, base, fresh, f"hosting-pitr-unpack-{token}", ref)
        # Sealed segments decrypted for the recovery only (wal_seal), removed whatever happens.
        with wal_seal.opened(state_dir, tenant, deployment, base.first_wal) as opened:
            _recover(
                spec, live, image, (archive, opened.resolve()), fresh, target_time,
                f"hosting-pitr-{token}", ref,
            )  # fmt: skip
    except HostingError as exc:
        _discard(spec, live, image, fresh, f"hosting-pitr-clean-{token}", ref)
        raise RestoreFailed(
            f"restore of {ref} to {pitr.iso(target_time)} failed, the database is untouched:"
            f" {exc.message}"
        ) from None
    standbys = pitr_replicas.standbys(spec, engine, tenant, deployment)
    _swap(spec, live, image, fresh, kept, f"hosting-pitr-swap-{token}", ref, standbys)
    cloned, failed = pitr_replicas.reclone(
        spec, engine, live.target, standbys,
        lambda s: _empty(spec, live, image, s, f"hosting-pitr-replica-{token}-{s.index}", ref),
    )  # fmt: skip
    if failed:
        raise ReplicasNotCloned(
            f"{ref} is restored to {pitr.iso(target_time)} and serving, but "
            + "; ".join(
                f"its read replica {i} was not cloned again: {why}"
                for i, why in sorted(failed.items())
            )
            + f" (the previous data directory is kept as {kept})",
            "run `hosting apply`: it starts the replica again, which clones the restored"
            " primary afresh (its old copy was emptied)",
        )
    return RestoreOutcome(tenant, deployment, target_time, base.name, str(kept), tuple(cloned))


def _empty(
    spec: Spec, live: _Live, image: str, standby: pitr_replicas.Standby, name: str, ref: str
) -> None:
    """Empty a read replica's data directory (its volume, at the primary's layout), so its
    start script clones the primary again; a volume that is gone needs nothing."""
    gone = subprocess.run(
        ["docker", "volume", "inspect", standby.volume], capture_output=True, timeout=60,
        env=docker_env(spec), check=False,
    )  # fmt: skip
    if gone.returncode != 0:
        return
    _docker(
        spec, "run", "--rm", *_hardened(replace(live, volume=standby.volume), name, ref),
        "--entrypoint", "sh", image, "-c", 'rm -rf "$1" "$1.partial" && [ ! -e "$1" ]',
        "sh", str(live.pgdata),
    )  # fmt: skip


def _flush_wal(spec: Spec, state_dir: Path, target: Target, tenant: str, dep: str) -> None:
    """Close the current segment and wait for it in the archive, so that a target of a
    moment ago has its WAL. Best effort: recovery says so when WAL is missing."""
    try:
        segment = pitr._psql_value(spec, target, "SELECT pg_walfile_name(pg_switch_wal())")
    except HostingError:
        return
    folder = pitr.archive_dir(state_dir, tenant, dep)
    names = (folder / f"{segment}.gz", folder / f"{segment}{pitr.SEALED}")
    deadline = time.monotonic() + SWITCH_WAIT_S
    while time.monotonic() < deadline and not any(p.is_file() for p in names):
        time.sleep(0.5)


def _unpack(
    spec: Spec, live: _Live, image: str, base: pitr.BaseBackup, fresh: PurePosixPath,
    name: str, ref: str,
) -> None:  # fmt: skip
    script = 'mkdir -m 700 "$1" && tar -xz -C "$1" && touch "$1/recovery.signal"'
    args = [
        "docker", "run", "--rm", "-i", *_hardened(live, name, ref),
        "--entrypoint", "sh", image, "-c", script, "sh", str(fresh),
    ]  # fmt: skip
    code, stderr = reading.feed(
        args, docker_env(spec), reading.plaintext(base.path), 3600, "unpacking the base backup"
    )
    if code != 0:
        text = stderr.decode(errors="replace").strip().splitlines()
        raise RestoreFailed(f"unpacking {base.name} failed: {(text or ['no message'])[-1]}")


def _recover(
    spec: Spec, live: _Live, image: str, archives: tuple[Path, Path], fresh: PurePosixPath,
    target_time: datetime, name: str, ref: str,
) -> None:  # fmt: skip
    when = target_time.astimezone(UTC).isoformat(sep=" ")
    archive, opened = archives
    try:
        _docker(
            spec, "run", "-d", *_hardened(live, name, ref),
            "--mount", f"type=bind,source={archive},target={pitr.ARCHIVE_MOUNT},readonly",
            "--mount", f"type=bind,source={opened},target={pitr.OPENED_MOUNT},readonly",
            "--entrypoint", "postgres", image, "-D", str(fresh),
            "-c", "listen_addresses=", "-c", "unix_socket_directories=/tmp",
            # archive_mode on with no command: the new timeline's files wait in pg_wal
            # (.ready) for the real server, which archives them after the swap.
            "-c", "archive_mode=on", "-c", "archive_command=",
            "-c", f"restore_command={pitr.RESTORE_COMMAND}",
            "-c", f"recovery_target_time={when}", "-c", "recovery_target_action=promote",
        )  # fmt: skip
        deadline = time.monotonic() + pitr.READY_TIMEOUT_S
        while True:
            state = _docker(spec, "inspect", "-f", "{{.State.Status}}", name)
            if state in ("exited", "dead"):
                raise RestoreFailed(_why(spec, name))
            probe = subprocess.run(
                ["docker", "exec", name, "psql", "-X", "-A", "-t", "-h", "/tmp",
                 "-U", live.target.user, "-d", live.target.dbname,
                 "-c", "SELECT pg_is_in_recovery()::text || (SELECT count(*) FROM pg_class)"],
                capture_output=True, text=True, timeout=60, env=docker_env(spec), check=False,
            )  # fmt: skip
            if probe.returncode == 0 and probe.stdout.strip().startswith("false"):
                break  # promoted at the target, and it answers a query on the database
            if time.monotonic() > deadline:
                raise RestoreFailed(
                    f"recovery did not finish within {pitr.READY_TIMEOUT_S:g} s: {_why(spec, name)}"
                )
            time.sleep(1)
        _docker(spec, "stop", "-t", "120", name, timeout=180)  # a clean shutdown checkpoints
        code = _docker(spec, "inspect", "-f", "{{.State.ExitCode}}", name)
        if code != "0":
            raise RestoreFailed(f"the restored server did not shut down cleanly (exit {code})")
    finally:
        remove_container(spec, name)


def _why(spec: Spec, name: str) -> str:
    """The server's own reason: its last FATAL/PANIC line, else its last line."""
    logs = subprocess.run(
        ["docker", "logs", "--tail", "40", name], capture_output=True, text=True, timeout=60,
        env=docker_env(spec), check=False,
    )  # fmt: skip
    lines = [ln.strip() for ln in (logs.stdout + logs.stderr).splitlines() if ln.strip()]
    fatal = [ln for ln in lines if "FATAL" in ln or "PANIC" in ln]
    detail = [ln for ln in lines if "restore:" in ln]
    chosen = (detail or fatal or lines or ["no log"])[-1]
    return chosen[:300]


def _discard(
    spec: Spec, live: _Live, image: str, fresh: PurePosixPath, name: str, ref: str
) -> None:
    with contextlib.suppress(HostingError):  # a leftover sibling is inert
        _docker(
            spec, "run", "--rm", *_hardened(live, name, ref), "--entrypoint", "rm", image,
            "-rf", str(fresh),
        )  # fmt: skip


def _swap(
    spec: Spec, live: _Live, image: str, fresh: PurePosixPath, kept: PurePosixPath,
    name: str, ref: str, standbys: list[pitr_replicas.Standby],
) -> None:  # fmt: skip
    container = live.target.container
    pitr_replicas.stop(spec, standbys)  # from here on no read serves the abandoned timeline
    _docker(spec, "stop", "-t", "60", container, timeout=120)
    script = 'mv "$1" "$2" && { mv "$3" "$1" || { mv "$2" "$1"; exit 1; }; }'
    try:
        _docker(
            spec, "run", "--rm", *_hardened(live, name, ref), "--entrypoint", "sh", image,
            "-c", script, "sh", str(live.pgdata), str(kept), str(fresh),
        )  # fmt: skip
    except HostingError as exc:
        _docker(spec, "start", container)
        pitr_replicas.start_again(spec, standbys)  # the old data is back: they follow it
        _discard(spec, live, image, fresh, name + "-clean", ref)
        raise RestoreFailed(
            f"swapping the restored data into {ref} failed, the old data is back: {exc.message}"
        ) from None
    _docker(spec, "start", container)
    deadline = time.monotonic() + 180
    while True:
        try:
            pitr._psql_value(spec, live.target, "SELECT 1", timeout=30)
            return
        except HostingError as exc:
            if time.monotonic() > deadline:
                raise RestoreFailed(
                    f"{ref} does not answer after the swap ({exc.message});"
                    f" the previous data is in {kept}"
                ) from None
            time.sleep(1)


def drop_kept(
    spec: Spec, tenant: str, deployment: str, *, engine: Engine | None = None
) -> list[str]:
    """Delete the data directories restores kept aside (and any a failed one left)."""
    engine = engine or Engine(spec.platform.docker.host)
    live = _live(spec, engine, tenant, deployment)
    script = (
        'cd "$1" && for d in "$2".before-* "$2".restore-*; do [ -d "$d" ] || continue; '
        'rm -rf "$d" && echo "$d"; done'
    )
    name = f"hosting-pitr-prune-{secrets.token_hex(5)}"
    out = _docker(
        spec, "run", "--rm", *_hardened(live, name, f"{tenant}/{deployment}"),
        "--entrypoint", "sh", live.target.image, "-c", script, "sh",
        str(live.pgdata.parent), live.pgdata.name,
    )  # fmt: skip
    return [line for line in out.splitlines() if line.strip()]
