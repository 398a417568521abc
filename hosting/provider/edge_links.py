"""The edge's tenant networks, joined and left live.

Through the engine a container's networks cannot change in place: the provider replaces the
container, and replacing the edge drops every tenant's traffic for seconds. So the program
creates the edge on the tenant networks of its day and ignores later changes to them, and
apply joins a new tenant's network (and leaves a removed one's) on the running edge.
"""

from __future__ import annotations

import json

from hosting.provider.runtime import docker
from hosting.spec import names
from hosting.spec.models import Spec


def _wanted(spec: Spec) -> set[str]:
    return {names.network_name(spec.platform.name, t) for t in spec.tenants}


def _attached(spec: Spec) -> set[str] | None:
    """The platform's networks the edge is on; None when there is no edge container."""
    edge = names.edge_name(spec.platform.name)
    found = docker(spec, "ps", "-a", "-q", "--filter", f"name=^{edge}$").split()
    if not found:
        return None
    networks = json.loads(docker(spec, "inspect", "-f", "{{json .NetworkSettings.Networks}}", edge))
    prefix = f"{spec.platform.name}_"
    return {n for n in (networks or {}) if n.startswith(prefix)}


def leave_removed(spec: Spec) -> None:
    """Before apply: a removed tenant's network can only be deleted once the edge has left."""
    attached = _attached(spec)
    for network in sorted((attached or set()) - _wanted(spec)):
        docker(spec, "network", "disconnect", network, names.edge_name(spec.platform.name))


def join_all(spec: Spec) -> None:
    """After apply: the edge is on every tenant's network before it routes to them."""
    attached = _attached(spec)
    if attached is None:
        return
    for network in sorted(_wanted(spec) - attached):
        docker(spec, "network", "connect", network, names.edge_name(spec.platform.name))
