"""What apply does differently on `platform.target: swarm`, outside the program."""

from __future__ import annotations

from hosting.spec import names
from hosting.spec.models import DatabaseDeployment, Spec


def swarm_upstreams(spec: Spec) -> dict[tuple[str, str], list[str]]:
    """The edge dials a service's virtual IP, which Swarm balances over its tasks wherever
    they run (and over however many the autoscaler keeps): one address per deployment."""
    out: dict[tuple[str, str], list[str]] = {}
    for tid, tenant in spec.tenants.items():
        for did, dep in tenant.deployments.items():
            if isinstance(dep, DatabaseDeployment) or dep.listen_port is None:
                continue
            out[(tid, did)] = [
                f"{names.service_name(spec.platform.name, tid, did)}:{dep.listen_port}"
            ]
    return out
