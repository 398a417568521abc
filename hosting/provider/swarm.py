"""What apply does differently on `platform.target: swarm`, outside the program."""

from __future__ import annotations

from hosting.spec import names
from hosting.spec.models import DatabaseDeployment, Spec


def swarm_upstreams(spec: Spec) -> dict[tuple[str, str], list[str]]:
    """One address per deployment, its service's name: in `vip` mode a virtual IP that
    Swarm balances over the tasks wherever they run (however many the autoscaler keeps);
    in `dnsrr` mode a name the edge resolves to every task (`resolved`)."""
    out: dict[tuple[str, str], list[str]] = {}
    for tid, tenant in spec.tenants.items():
        for did, dep in tenant.deployments.items():
            if isinstance(dep, DatabaseDeployment) or dep.listen_port is None:
                continue
            out[(tid, did)] = [
                f"{names.service_name(spec.platform.name, tid, did)}:{dep.listen_port}"
            ]
    return out


def resolved(spec: Spec) -> frozenset[tuple[str, str]]:
    """The deployments the edge must resolve for each task's address (`dnsrr` mode)."""
    if spec.platform.swarm.endpoint_mode != "dnsrr":
        return frozenset()
    return frozenset(swarm_upstreams(spec))
