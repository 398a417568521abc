"""What apply does differently on `platform.target: swarm`, outside the program."""

from __future__ import annotations

from hosting.provider.runtime import DeploymentStatus
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


def node_cpus(spec: Spec) -> float:
    """The fewest CPUs of any node: a task's CPU limit above its node's count is rejected
    ("Range of CPUs is from 0.01 to 2.00"), and any node may get any app's task."""
    import json

    from hosting.provider.runtime import docker

    ids = docker(spec, "node", "ls", "-q").split()
    nodes = json.loads(docker(spec, "node", "inspect", *ids))
    return min(float(n["Description"]["Resources"]["NanoCPUs"]) / 1e9 for n in nodes)


def own_node_id(spec: Spec) -> str:
    """The swarm node id of platform.docker.host's engine (`docker info`), where `hosting`
    runs: the program pins the edge to it."""
    from hosting.errors import ProviderError
    from hosting.provider.runtime import docker

    info = docker(spec, "info", "--format", "{{.Swarm.NodeID}} {{.Swarm.ControlAvailable}}")
    node_id, _, manager = info.strip().partition(" ")
    if not node_id or manager != "true":
        raise ProviderError(
            f"the engine at {spec.platform.docker.host} is not a swarm manager",
            "platform.target swarm needs platform.docker.host to name a manager's engine "
            "(`docker node ls` works there)",
        )
    return node_id


def service_tasks(spec: Spec) -> dict[str, tuple[int, int]]:
    """Each of the platform's services: (tasks running, replicas wanted), in one call per
    service listing (`docker service ls` counts tasks on every node)."""
    from hosting.provider.runtime import docker

    listing = docker(
        spec,
        "service",
        "ls",
        "--filter",
        "label=hosting.type",
        "--format",
        "{{.Name}} {{.Replicas}}",
    )
    out: dict[str, tuple[int, int]] = {}
    for line in listing.splitlines():
        name, _, replicas = line.partition(" ")
        running, _, wanted = replicas.split(" ", 1)[0].partition("/")
        if name.startswith(f"{spec.platform.name}_") and running.isdigit() and wanted.isdigit():
            out[name] = (int(running), int(wanted))
    return out


def status(spec: Spec, verified: frozenset[str] = frozenset()) -> list[DeploymentStatus]:
    """`hosting status` on a swarm: a deployment's service and its tasks on every node. An
    autoscaled service wants the agent's count, not the file's minimum. Health is each
    task's own check, which Swarm acts on (it replaces an unhealthy task): "none" here."""
    found = service_tasks(spec)
    platform = spec.platform.name
    out: list[DeploymentStatus] = []
    for tid, tenant in spec.tenants.items():
        for did, dep in tenant.deployments.items():
            urls: list[str] = []
            if not isinstance(dep, DatabaseDeployment):
                host = names.hostname(tid, did, dep.type, spec.platform.domain)
                urls = [f"https://{h}" for h in (host, *(d for d in dep.domains if d in verified))]
            running, wanted = found.get(names.service_name(platform, tid, did), (0, 0))
            if dep.stopped:
                word, wanted = "stopped", 0
            elif names.service_name(platform, tid, did) not in found:
                word = "pending"  # not applied yet: the file's count
                wanted = 1 if isinstance(dep, DatabaseDeployment) else dep.replica_count
            else:
                word = "running" if running == wanted and wanted > 0 else "pending"
            out.append(DeploymentStatus(tid, did, dep.type, word, "none", running, wanted, urls))
    return out
