"""A look at what runs on the Docker engine, by the labels every container carries.

`status`, `credentials` (fallback) and `logs` use this: they need no Pulumi engine. Apply
uses it for the one setting the docker provider cannot make: the pids limit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hosting.errors import HostingError, ProviderError
from hosting.spec import names
from hosting.spec.models import DatabaseDeployment, Spec


@dataclass(frozen=True)
class DeploymentStatus:
    tenant: str
    deployment: str
    type: str
    status: str  # pending | building | running | stopped | failed
    health: str  # healthy | unhealthy | starting | none | unknown
    replicas_running: int
    replicas_wanted: int
    urls: list[str]


def docker_env(spec: Spec) -> dict[str, str]:
    return {**os.environ, "DOCKER_HOST": spec.platform.docker.host}


def docker_checked(
    spec: Spec,
    *args: str,
    failure: type[HostingError],
    timeout: float = 300,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
) -> str:
    """`docker ARGS` on the platform's engine, its output; a timeout or a failure raises
    `failure` naming the subcommand and the last line it printed (a drill's, a restore's or an
    upgrade's own error, so the caller's exit code and cleanup hold)."""
    try:
        out = subprocess.run(
            ["docker", *args], capture_output=True, timeout=timeout,
            env={**docker_env(spec), **(env or {})}, input=stdin, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise failure(f"docker {args[0]} took over {timeout:g} s") from None
    if out.returncode != 0:
        lines = [ln for ln in out.stderr.decode(errors="replace").splitlines() if ln.strip()]
        raise failure(f"docker {args[0]} failed: {(lines or ['no message'])[-1].strip()}")
    return out.stdout.decode(errors="replace").strip()


def remove_container(spec: Spec, name: str) -> None:
    """`docker rm -f`, whether or not it is there (cleanup after a failure)."""
    subprocess.run(
        ["docker", "rm", "-f", name], capture_output=True, timeout=120, env=docker_env(spec),
        check=False,
    )  # fmt: skip


def docker(spec: Spec, *args: str, timeout: float = 60) -> str:
    if shutil.which("docker") is None:
        raise ProviderError("the docker CLI is not installed", "install Docker (docker.io)")
    out = subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=docker_env(spec),
        check=False,
    )
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no message"])[-1]
        raise ProviderError(
            f"docker {args[0]} failed: {last}",
            f"is the Docker engine at {spec.platform.docker.host} running?",
        )
    return out.stdout


def containers(spec: Spec) -> dict[str, dict[str, Any]]:
    """This platform's containers (by name prefix and labels), inspected."""
    ids = docker(spec, "ps", "-a", "-q", "--filter", "label=hosting.type", "--no-trunc").split()
    if not ids:
        return {}
    data = json.loads(docker(spec, "inspect", *ids))
    prefix = f"{spec.platform.name}_"
    out: dict[str, dict[str, Any]] = {}
    for c in data:
        name = str(c["Name"]).lstrip("/")
        if name.startswith(prefix):
            out[name] = c
    return out


def _health(states: list[dict[str, Any]]) -> str:
    values = {s.get("Health", {}).get("Status", "none") for s in states}
    for word in ("unhealthy", "starting", "healthy"):
        if word in values:
            return word
    return "none" if states else "unknown"


def status(
    spec: Spec,
    verified: frozenset[str] = frozenset(),
    state_dir: Path | None = None,
    static_sources: frozenset[tuple[str, str]] = frozenset(),
) -> list[DeploymentStatus]:
    """`state_dir`: where a running source build leaves its marker (`building`);
    `static_sources`: source deployments built as static sites (served by the edge)."""
    from hosting.sources.build import building_marker

    if spec.platform.target == "swarm":
        from hosting.provider.swarm import status as swarm_status

        return swarm_status(spec, verified)
    found = containers(spec)
    platform = spec.platform.name
    edge = found.get(names.edge_name(platform))
    edge_up = bool(edge and edge["State"]["Running"])
    out: list[DeploymentStatus] = []
    for tid, tenant in spec.tenants.items():
        for did, dep in tenant.deployments.items():
            if isinstance(dep, DatabaseDeployment):
                wanted, urls = 1 + dep.replicas, []  # the primary is container 0
                static = False
            else:
                static = dep.static is not None or (tid, did) in static_sources
                wanted = 0 if static else dep.replica_count
                host = names.hostname(tid, did, dep.type, spec.platform.domain)
                urls = [f"https://{h}" for h in (host, *(d for d in dep.domains if d in verified))]
            states = [
                found[n]["State"]
                for i in range(max(wanted, 1))
                if (n := names.container_name(platform, tid, did, i)) in found
            ]
            running = sum(1 for s in states if s["Running"])
            if dep.stopped:
                wanted = 0
            if dep.stopped:
                word = "stopped"
            elif state_dir is not None and building_marker(state_dir, tid, did).exists():
                word = "building"
            elif static:
                word = "running" if edge_up else "pending"
            elif not states:
                word = "pending"
            elif any(s["Status"] in ("exited", "dead") or s.get("Restarting") for s in states):
                word = "failed"
            elif running == wanted:
                word = "running"
            else:
                word = "pending"
            health = "none" if static else _health(states)
            out.append(DeploymentStatus(tid, did, dep.type, word, health, running, wanted, urls))
    return out


def engine_cpus(spec: Spec) -> float:
    """How many CPUs the Docker engine has (a container's CPU limit cannot exceed them)."""
    return float(docker(spec, "info", "--format", "{{.NCPU}}").strip())


def remove_volumes(spec: Spec) -> list[str]:
    """Every volume of this platform (a `hosting.*` label and the platform's name prefix)."""
    listed = docker(spec, "volume", "ls", "-q", "--filter", "label=hosting.type")
    ours = sorted(v for v in listed.split() if v.startswith(f"{spec.platform.name}_"))
    if ours:
        docker(spec, "volume", "rm", *ours)
    return ours


def enforce_pids_limits(spec: Spec, wanted: dict[str, int]) -> list[str]:
    """Set each named container's pids cgroup limit where it differs, through the Engine
    API's update endpoint: the docker provider has no such argument. A container keeps it
    across restarts; one the engine replaced gets it at the end of the same apply. Returns
    the containers updated."""
    from hosting.errors import HostingError
    from hosting.metering.engine import Engine

    engine = Engine(spec.platform.docker.host)
    try:
        updated = []
        for name, limit in sorted(wanted.items()):
            found = engine.find(name)
            if found is None or (found.get("HostConfig") or {}).get("PidsLimit") == limit:
                continue
            engine.request("POST", f"/containers/{found['Id']}/update", body={"PidsLimit": limit})
            updated.append(name)
        return updated
    except HostingError as exc:
        raise ProviderError(
            f"could not set the process limit: {exc.message}",
            "the containers run without it until the next apply succeeds",
        ) from None


def plain_database_volumes(
    spec: Spec, volumes: Mapping[str, list[str]] | None = None
) -> frozenset[str]:
    """Databases ("tenant/deployment") whose data volume exists on the engine as a plain
    named volume, not bound into a size-bounded filesystem (hosting.provider.volume_quota).
    `volumes`: the names to look for per database, the first that exists decides (default:
    its first volume's)."""
    from hosting.metering.engine import Engine

    engine = Engine(spec.platform.docker.host)
    found = engine.request("GET", "/volumes").get("Volumes") or []
    options = {v["Name"]: v.get("Options") or {} for v in found}
    out = set()
    for tid, tenant in spec.tenants.items():
        for did, dep in tenant.deployments.items():
            key = f"{tid}/{did}"
            wanted = (volumes or {}).get(key) or [names.volume_name(spec.platform.name, tid, did)]
            name = next((n for n in wanted if n in options), wanted[0])
            plain = name in options and options[name].get("o") != "bind"
            if isinstance(dep, DatabaseDeployment) and plain:
                out.add(f"{tid}/{did}")
    return frozenset(out)


def io_device(spec: Spec) -> str | None:
    """The block device behind the engine's data root, where disk IO limits apply; None for
    a remote engine, whose disks this machine cannot see."""
    from hosting.provider.blockdev import device_of

    if not spec.platform.docker.host.startswith("unix://") or spec.platform.target == "swarm":
        return None  # a swarm task's disk is on whichever node runs it
    return device_of(docker(spec, "info", "-f", "{{.DockerRootDir}}").strip())
