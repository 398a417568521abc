"""Images reach a swarm's nodes from the manager's engine, with no registry (issue 11).

Before the engine runs, every image a service names that the manager's engine has is made
the same image (by id) on each node of `platform.swarm.nodes` its tasks may be placed on:
`docker save` on the manager streamed into `docker load` on the node, skipped where the node
already has that id. So an image built here (`build:`, `source:`) runs anywhere, and an
image pulled once here runs as the same version on every node. An image the manager lacks
is left to the nodes' own registry, as Swarm does.

Each image goes only where its tasks may run: an app's to every node, a database's to the
nodes labelled hosting.db=true, the edge's to the managers. A node listed but not answering,
or a node of the swarm not listed while an image built here would run on it, stops apply
before anything changes, naming the node.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

from hosting.errors import ProviderError
from hosting.spec.models import Spec
from hosting.stacks.desired import Desired

TIMEOUT_S = 15  # for a node's engine to answer one call
LOAD_TIMEOUT_S = 600  # for a node to load what it lacks


@dataclass(frozen=True)
class Node:
    id: str
    name: str
    role: str
    db: bool  # labelled hosting.db=true
    ready: bool
    active: bool  # takes tasks (not drained or paused)


def placements(desired: Desired) -> dict[str, set[str]]:
    """Image → where its tasks may run: "any", "db" or "manager" (as hosting.stacks.swarm
    places them)."""
    out: dict[str, set[str]] = {}
    for replicas in desired.apps.values():
        for c in replicas[:1]:
            out.setdefault(c.image, set()).add("any")
    for db in desired.databases.values():
        if db is not None:
            out.setdefault(db.image, set()).add("db")
    out.setdefault(desired.edge.image, set()).add("manager")
    return out


def runs_on(node: Node, where: set[str]) -> bool:
    return (
        "any" in where
        or ("db" in where and node.db)
        or ("manager" in where and node.role == "manager")
    )


def _docker(host: str, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["docker", *args],
            env={**os.environ, "DOCKER_HOST": host},
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(args, 124, "", f"no answer in {TIMEOUT_S} s")


def _last(done: subprocess.CompletedProcess[str]) -> str:
    return (done.stderr.strip().splitlines() or ["no message"])[-1]


def swarm_nodes(manager: str) -> tuple[str, list[Node]]:
    """(the manager's own node id, every node of the swarm), as the manager sees them."""
    own = _docker(manager, "info", "--format", "{{.Swarm.NodeID}}")
    ids = _docker(manager, "node", "ls", "-q")
    if own.returncode != 0 or ids.returncode != 0 or not own.stdout.strip():
        failed = ids if own.returncode == 0 else own
        raise ProviderError(
            f"the swarm manager at {manager} did not list its nodes: {_last(failed)}",
            "platform.docker.host must name a manager's engine (`docker node ls` works there)",
        )
    listed = _docker(manager, "node", "inspect", *ids.stdout.split())
    nodes = []
    for n in json.loads(listed.stdout or "[]"):
        spec = n.get("Spec", {})
        nodes.append(
            Node(
                id=n["ID"],
                name=n["Description"]["Hostname"],
                role=spec.get("Role", ""),
                db=(spec.get("Labels") or {}).get("hosting.db") == "true",
                ready=n.get("Status", {}).get("State") == "ready",
                active=spec.get("Availability") == "active",
            )
        )
    return own.stdout.strip(), nodes


def image_ids(host: str, images: Iterable[str]) -> dict[str, str]:
    """Image → its id on the engine at `host`, for those it has."""
    out = {}
    for image in images:
        done = _docker(host, "image", "inspect", "--format", "{{.Id}}", image)
        if done.returncode == 0:
            out[image] = done.stdout.strip()
    return out


def distribute(
    spec: Spec,
    desired: Desired,
    built: frozenset[str],
) -> dict[str, list[str]]:
    """Load what each node lacks; node → the images loaded there. `built`: the images built
    here, which no registry has. Raises, before loading anything, when a node that needs an
    image cannot be given it."""
    manager = spec.platform.docker.host
    listed = spec.platform.swarm.nodes
    where = placements(desired)
    local = image_ids(manager, where)
    # (a built image missing here belongs to a tenant `apply --tenant` leaves alone)
    own, nodes = swarm_nodes(manager)
    todo: dict[str, list[str]] = {}  # node name → images it needs from here
    for node in nodes:
        if node.id == own:
            continue  # the manager's engine: built and pulled here
        needs = [i for i in local if runs_on(node, where[i])]
        if node.name not in listed:
            orphans = [i for i in needs if i in built]
            if orphans and node.ready and node.active:
                raise ProviderError(
                    f"node {node.name} of the swarm is not in platform.swarm.nodes, so "
                    f"{orphans[0]}, built here, cannot reach it; nothing was applied",
                    f"add `{node.name}: <its engine's address>` to platform.swarm.nodes, or "
                    "drain it (docker node update --availability drain)",
                )
            continue
        if needs:
            todo[node.name] = needs
    missing: dict[str, list[str]] = {}
    for name, needs in todo.items():  # every node answers before any is loaded
        if not _answers(listed[name]):
            raise ProviderError(
                f"node {name} ({listed[name]}) does not answer, so the images its tasks "
                "need cannot be loaded there; nothing was applied",
                "start its engine, or remove it from the swarm and from platform.swarm.nodes",
            )
        there = image_ids(listed[name], needs)
        lacking = [i for i in needs if there.get(i) != local[i]]
        if lacking:
            missing[name] = lacking
    for name, images in missing.items():
        _stream(manager, listed[name], images, name)
    return missing


def _answers(host: str) -> bool:
    return _docker(host, "version", "--format", "{{.Server.Version}}").returncode == 0


def _stream(manager: str, node_host: str, images: list[str], name: str) -> None:
    """`docker save` on the manager piped into `docker load` on the node, never on disk."""
    save = subprocess.Popen(
        ["docker", "save", *images],
        env={**os.environ, "DOCKER_HOST": manager},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # a failed save shows as a truncated stream in load
    )
    assert save.stdout is not None
    try:
        load = subprocess.run(
            ["docker", "load", "-q"],
            env={**os.environ, "DOCKER_HOST": node_host},
            stdin=save.stdout,
            capture_output=True,
            text=True,
            timeout=LOAD_TIMEOUT_S,
            check=False,
        )
        why = _last(load) if load.returncode != 0 else None
    except subprocess.TimeoutExpired:
        why = f"not done in {LOAD_TIMEOUT_S} s"
    finally:
        save.stdout.close()
        save.kill()  # done or given up: nothing more to stream
        save.wait()
    if why is not None:
        raise ProviderError(
            f"loading {', '.join(images)} onto node {name} failed: {why}; nothing was applied",
            f"check node {name}'s engine and its free disk space, then apply again",
        )
