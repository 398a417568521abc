"""Read replicas across a point-in-time restore (issue 12).

The restored primary starts a new timeline from an earlier moment. Its standbys followed the
old one: they cannot follow the new one, and until they stop they serve rows the restore
removed. So they are stopped with the primary, before the swap, and after it each is cloned
again from the restored primary: its replication slot recreated (a base backup carries no
slots; hosting.databases.replication's `prepare_primary`, as apply runs it), its data
directory emptied (the standby's start script then runs `pg_basebackup` into it), started,
and waited for until the primary sees it streaming. A standby that cannot be cloned is left
emptied, so the next `hosting apply`, which recreates and feeds it, clones it afresh and never
starts it on the old timeline.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from hosting.backups.pg import Target, database_deployment
from hosting.databases import replication
from hosting.errors import HostingError
from hosting.metering.engine import Engine
from hosting.provider.runtime import docker_env
from hosting.spec import names
from hosting.spec.models import Spec

CLONE_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Standby:
    index: int
    container: str  # its name
    volume: str
    exists: bool  # the container (apply made it; it may have been removed since)
    running: bool

    @property
    def slot(self) -> str:
        return replication.slot_name(self.index)


def standbys(spec: Spec, engine: Engine, tenant: str, deployment: str) -> list[Standby]:
    """The declared read replicas of the database, as the engine has them."""
    dep = database_deployment(spec, tenant, deployment)
    platform = spec.platform.name
    found = {
        c.name: c
        for c in engine.containers(all=True)
        if (c.tenant, c.deployment, c.kind) == (tenant, deployment, "replica")
    }
    out = []
    for i in range(1, dep.replicas + 1):
        name = names.container_name(platform, tenant, deployment, i)
        c = found.get(name)
        out.append(
            Standby(
                i, name, names.volume_name(platform, tenant, deployment, f"replica{i}"),
                c is not None, c is not None and c.state == "running",
            )
        )  # fmt: skip
    return out


def _docker(spec: Spec, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout,
        env=docker_env(spec), check=False,
    )  # fmt: skip


def _last_line(out: subprocess.CompletedProcess[str]) -> str:
    lines = [ln.strip() for ln in out.stderr.splitlines() if ln.strip()]
    return (lines or ["no message"])[-1][:300]


def stop(spec: Spec, found: list[Standby]) -> None:
    """Stop the running standbys: from here on the read alias serves nothing stale."""
    for s in found:
        if s.running:
            _docker(spec, "stop", "-t", "30", s.container)


def start_again(spec: Spec, found: list[Standby]) -> None:
    """The swap failed and the old data is back: the standbys follow it as before."""
    for s in found:
        if s.running:
            _docker(spec, "start", s.container)


def _password(engine: Engine, found: list[Standby]) -> str | None:
    """The replication role's password, from a standby's environment, where apply put it
    (PGPASSWORD, for its walreceiver). It goes to the primary only as a SCRAM verifier."""
    for s in found:
        if not s.exists:
            continue
        env = (engine.inspect(s.container).get("Config") or {}).get("Env") or []
        for item in env:
            if item.startswith("PGPASSWORD="):
                return str(item.split("=", 1)[1])
    return None


def reclone(
    spec: Spec,
    engine: Engine,
    primary: Target,
    found: list[Standby],
    empty: Callable[[Standby], None],
    *,
    timeout_s: float = CLONE_TIMEOUT_S,
) -> tuple[list[str], dict[int, str]]:
    """Clone every standby again from the restored primary. `empty(standby)` empties its
    data directory (a container on its volume, made by the caller, who knows the layout).
    Returns (the slots streaming again, {index: why not} for the others)."""
    host = spec.platform.docker.host
    failed: dict[int, str] = {}
    password = _password(engine, found)
    unfed = None
    if password is not None:
        try:
            replication.prepare_primary(
                host, primary.container, primary.user, primary.dbname, password, len(found)
            )
        except HostingError as exc:
            unfed = f"its slot was not recreated ({exc.message})"
    started: list[Standby] = []
    for s in found:
        try:
            empty(s)  # whatever happens next, it never starts on the old timeline again
        except HostingError as exc:
            failed[s.index] = f"its data directory was not emptied ({exc.message})"
            continue
        if unfed is not None:  # emptied, left stopped: apply feeds the primary, then it
            failed[s.index] = unfed
            continue
        if not s.exists:
            failed[s.index] = f"its container {s.container} is gone"
            continue
        out = _docker(spec, "start", s.container)
        if out.returncode != 0:
            failed[s.index] = f"it did not start ({_last_line(out)})"
            continue
        started.append(s)
    waiting = {s.slot: s for s in started}
    deadline = time.monotonic() + timeout_s
    while waiting:
        try:
            states = replication.replica_states(host, primary.container, primary.user,
                                                primary.dbname)  # fmt: skip
        except HostingError:
            states = []
        for state in states:
            if state.streaming:
                waiting.pop(state.name, None)
        if not waiting or time.monotonic() > deadline:
            break
        time.sleep(1)
    for s in waiting.values():
        failed[s.index] = (
            f"it was not streaming {timeout_s:g} s after it started cloning (see `hosting logs`)"
        )
    return [s.slot for s in started if s.slot not in waiting], failed
