"""The tasks of every node of a swarm, read by the one agent on the manager into its store.

One agent reads every node's engine (platform.swarm.nodes) rather than an agent per node
shipping samples: one store and one writer, so there is nothing to merge and no sample that
two writers could both record. A node's engine lists only the containers it runs, so each
task is read once, from its own node; a container id seen from two addresses of one engine
is still read once (the first engine to list it wins).
"""

from __future__ import annotations

from collections.abc import Mapping

from hosting.errors import MeteringError
from hosting.metering.containers import ContainerReader, Reading
from hosting.metering.engine import Engine

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
