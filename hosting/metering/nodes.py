"""The tasks of every node of a swarm, read by the one agent on the manager into its store.

One agent reads every node's engine (platform.swarm.nodes) rather than an agent per node
shipping samples: one store and one writer, so there is nothing to merge and no sample that
two writers could both record. A node's engine lists only the containers it runs, so each
task is read once, from its own node; a container id seen from two addresses of one engine
is still read once (the first engine to list it wins).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from hosting.errors import MeteringError
from hosting.metering.containers import ContainerReader, Reading
from hosting.metering.engine import Container, Engine

NODE_TIMEOUT_S = 10.0  # a node that does not answer must not hold the others' sample long


class SwarmReader:
    """The manager's containers as on one engine (kernel files, where their processes are
    this machine's), then every other listed node's through its engine's stats API.

    An unreachable manager fails the read, as one engine does. An unreachable node is left
    out of this read and named in `unreached`: its containers keep their last readings in
    the store, so their usage meanwhile is counted, once, when the node answers again.
    """

    def __init__(
        self, manager: Engine, nodes: Mapping[str, str], tenants: frozenset[str] | None = None
    ) -> None:
        name = next((n for n, host in sorted(nodes.items()) if host == manager.host), "manager")
        self.readers = [ContainerReader(manager, tenants, node=name)]
        self.readers += [
            ContainerReader(Engine(host, NODE_TIMEOUT_S), tenants, node=node, local=False)
            for node, host in sorted(nodes.items())
            if host != manager.host
        ]
        self._unreached: dict[str, str] = {}

    @property
    def unreached(self) -> dict[str, str]:
        return dict(self._unreached)

    def read(self) -> list[Reading]:
        self._unreached = {}
        readings: list[Reading] = []
        seen: set[str] = set()
        for i, reader in enumerate(self.readers):
            try:
                got = reader.read(skip=seen)
            except MeteringError as exc:
                if i == 0:
                    raise
                self._unreached[reader.node] = exc.message
                continue
            readings += got
            seen.update(r.container_id for r in got)
        return readings


class NodesEngine(Engine):
    """The manager's engine for health and storage, listing every node's containers.

    A listing asks the manager (which must answer) and then each other node of
    `platform.swarm.nodes`; a node that does not answer is named in `unreached` and its
    containers are left out. Whatever is then asked of one container (inspect, restart, its
    volumes) goes to the engine that listed it. Another node's containers carry no address:
    their overlay addresses are not reachable from here, so Docker's own health check, run
    on their node, is their verdict.
    """

    def __init__(self, manager: Engine, nodes: Mapping[str, str]) -> None:
        super().__init__(manager.host, manager.timeout)
        self.others = {
            node: Engine(host, NODE_TIMEOUT_S)
            for node, host in sorted(nodes.items())
            if host != manager.host
        }
        self._owners: dict[str, Engine] = {}  # container id → the other node's engine
        self.unreached: dict[str, str] = {}

    def containers(self, *, all: bool = True, size: bool = False) -> list[Container]:
        listed = super().containers(all=all, size=size)
        seen = {c.id for c in listed}
        self.unreached = {}
        for node, engine in self.others.items():
            try:
                theirs = engine.containers(all=all, size=size)
            except MeteringError as exc:
                self.unreached[node] = exc.message
                continue
            for c in theirs:
                if c.id not in seen:  # one engine listed under two addresses: read once
                    seen.add(c.id)
                    self._owners[c.id] = engine
                    listed.append(replace(c, addresses=()))
        return listed

    def local(self, container_id: str) -> bool:
        return container_id not in self._owners

    def host_of(self, container_id: str) -> str:
        owner = self._owners.get(container_id)
        return self.host if owner is None else owner.host

    def inspect(self, container_id: str) -> dict[str, Any]:
        owner = self._owners.get(container_id)
        return super().inspect(container_id) if owner is None else owner.inspect(container_id)

    def restart(self, container_id: str, timeout_s: int = 10) -> None:
        owner = self._owners.get(container_id)
        if owner is None:
            super().restart(container_id, timeout_s)
        else:
            owner.restart(container_id, timeout_s)

    def volume_sizes(self, container_id: str) -> dict[str, int]:
        owner = self._owners.get(container_id)
        return super().volume_sizes(container_id) if owner is None else owner.volume_sizes("")

    def image_size(self, image_id: str) -> int:
        try:
            return super().image_size(image_id)
        except MeteringError:  # built for another node only: ask the nodes
            for engine in self.others.values():
                with contextlib.suppress(MeteringError):
                    return engine.image_size(image_id)
            raise
