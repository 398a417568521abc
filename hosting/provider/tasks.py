"""Where a deployment's containers run, and on which engine: the one lookup that `logs`,
`credentials`, backups and drills use to reach them.

On `platform.target: docker` they are the containers of `platform.docker.host` named
`<platform>_<tenant>_<deployment>_<n>`, in replica order. On a swarm they are its service's
tasks, wherever Swarm placed them: the manager says which node runs each task, and the node's
engine (`platform.swarm.nodes`, the list the metering agent reads) has its container. A
database pinned by `hosting.db=true` is often on a worker, whose engine is not the manager's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from hosting.errors import HostingError, ProviderError
from hosting.metering.engine import Container, Engine, EngineUnreachable
from hosting.spec import names
from hosting.spec.models import Spec

NODE_TIMEOUT_S = 10.0  # a node that does not answer is named, not waited on for long


@dataclass(frozen=True)
class Placed:
    """One container of a deployment and the engine that runs it."""

    host: str  # that engine's address (DOCKER_HOST)
    container: Container
    node: str = ""  # the swarm node's name; "" on target docker

    @property
    def running(self) -> bool:
        return self.container.state == "running"


@dataclass(frozen=True)
class TaskAt:
    """A running-wanted task of a service, placed: which node and engine has its container."""

    slot: int
    node: str
    host: str
    container_id: str


def deployment_containers(
    spec: Spec, tenant: str, deployment: str, engine: Engine | None = None
) -> list[Placed]:
    """The deployment's containers in replica order (a database's primary first), with the
    engine each runs on. `engine`: the platform's engine (the manager's on a swarm)."""
    engine = engine or Engine(spec.platform.docker.host)
    if spec.platform.target == "swarm":
        return _on_swarm(spec, engine, tenant, deployment)
    prefix = names.container_name(spec.platform.name, tenant, deployment, 0)[:-1]
    found = [
        (int(c.name[len(prefix) :]), c)
        for c in engine.containers(all=True)
        if (c.tenant, c.deployment) == (tenant, deployment)
        and c.name.startswith(prefix)
        and c.name[len(prefix) :].isdigit()
    ]
    return [Placed(engine.host, c) for _, c in sorted(found, key=lambda pair: pair[0])]


def place_tasks(
    tasks: list[dict[str, Any]],
    node_names: Mapping[str, str],
    manager_id: str,
    manager_host: str,
    listed: Mapping[str, str],
    ref: str,
) -> list[TaskAt]:
    """Each task that has a container, on its node's engine, in slot order. The manager's
    own tasks are on `manager_host`; another node's engine is its `platform.swarm.nodes`
    entry, and a node missing there is an error naming it (its tasks cannot be reached)."""
    out: list[TaskAt] = []
    for task in tasks:
        container = ((task.get("Status") or {}).get("ContainerStatus") or {}).get("ContainerID")
        if not container:
            continue  # not created yet (pending, or being placed)
        node_id = str(task.get("NodeID") or "")
        node = node_names.get(node_id, node_id)
        if node_id == manager_id:
            host = manager_host
        elif node in listed:
            host = listed[node]
        else:
            raise ProviderError(
                f"{ref} runs on node {node}, which is not in platform.swarm.nodes, so its "
                "engine cannot be reached from here",
                f"add `{node}: <its engine's address>` to platform.swarm.nodes",
            )
        out.append(TaskAt(int(task.get("Slot") or 0), node, host, str(container)))
    return sorted(out, key=lambda t: (t.slot, t.container_id))


def _on_swarm(spec: Spec, manager: Engine, tenant: str, deployment: str) -> list[Placed]:
    ref = f"{tenant}/{deployment}"
    service = names.service_name(spec.platform.name, tenant, deployment)
    filters = quote(json.dumps({"service": [service], "desired-state": ["running"]}))
    try:
        # A service that does not exist (not applied) is a 404: no tasks.
        tasks = manager.request("GET", f"/tasks?filters={filters}", ok=(404,))
        nodes = manager.request("GET", "/nodes")
        info = manager.request("GET", "/info")
    except EngineUnreachable as exc:
        raise ProviderError(
            f"the swarm manager at {manager.host} does not answer: {exc.message}",
            "platform.docker.host must name a running manager's engine",
        ) from None
    if not isinstance(tasks, list):
        return []
    node_names = {n["ID"]: str((n.get("Description") or {}).get("Hostname") or n["ID"])
                  for n in nodes or []}  # fmt: skip
    manager_id = str((info.get("Swarm") or {}).get("NodeID") or "")
    placed = place_tasks(
        tasks, node_names, manager_id, manager.host, spec.platform.swarm.nodes, ref
    )
    listings: dict[str, dict[str, Container]] = {}
    out: list[Placed] = []
    for task in placed:
        if task.host not in listings:
            engine = manager if task.host == manager.host else Engine(task.host, NODE_TIMEOUT_S)
            listings[task.host] = {c.id: c for c in _listing(engine, task.node, ref)}
        found = listings[task.host].get(task.container_id)
        if found is not None and (found.tenant, found.deployment) == (tenant, deployment):
            out.append(Placed(task.host, found, task.node))
    return out


def _listing(engine: Engine, node: str, ref: str) -> list[Container]:
    try:
        return engine.containers(all=True)
    except HostingError as exc:
        raise ProviderError(
            f"node {node} ({engine.host}), where {ref} runs, does not answer: {exc.message}",
            f"is its engine up? `docker node ls` on the manager shows {node}'s state; "
            "platform.swarm.nodes gives the address used",
        ) from None
