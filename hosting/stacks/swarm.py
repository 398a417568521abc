"""The program for `platform.target: swarm`: the same desired containers (desired.py) as
Swarm services on a manager (`platform.docker.host`).

- A tenant's network is an encrypted overlay (IPsec between nodes): only its services and
  the edge are on it, and overlays do not route to each other.
- A web/API deployment is one replicated service; Swarm's VIP balances its replicas, and
  updates roll one task at a time, start-first, rolling back by themselves on failure.
  An autoscaled deployment starts at `min`; the program ignores the live count afterwards,
  so `plan` does not fight the metering agent that scales it.
- Secret values become Docker secrets, mounted under /run/secrets. A database's password is
  only there (POSTGRES_PASSWORD_FILE, which PostgreSQL's images read). An app gets
  `NAME_FILE` naming the file and, since no one can tell whether an image reads `_FILE`,
  its plain `NAME` as well (a Pulumi secret in state, as on the docker target).
- A database is one task pinned by the node label `hosting.db=true`: its volume is local to
  that node, so when the node dies the database is down until it is back (no failover).
  It is not published on any host port.
- The edge is one Caddy task pinned to the node whose engine is platform.docker.host, where
  `hosting` runs (apply pushes its routes through the admin socket in STATE_DIR and binds
  static folders of that machine; with several managers, another one lacks them), publishing
  80/443 in host mode. One task only: its certificates and ACME account live on that node's
  volume, not shared.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace

import pulumi
import pulumi_docker as docker

from hosting.spec import names
from hosting.spec.models import DatabaseDeployment, Spec
from hosting.stacks import service_args as sa
from hosting.stacks.components import PKG
from hosting.stacks.containers import POSTGRES_PORT, ContainerSpec, labels
from hosting.stacks.desired import Desired, desired_containers
from hosting.stacks.exports import export_database, status_of, urls_of
from hosting.stacks.settings import ProgramSettings

DATABASE_NODE = "node.labels.hosting.db==true"
EDGE_NODE = "node.role==manager"  # when the node's id is not known (mocks)


def edge_constraint(node_id: str | None) -> str:
    return f"node.id=={node_id}" if node_id else EDGE_NODE


class SwarmNetwork(pulumi.ComponentResource):
    """A tenant's encrypted overlay network."""

    def __init__(
        self, platform: str, tenant: str, encrypted: bool, opts: pulumi.ResourceOptions
    ) -> None:
        super().__init__(f"{PKG}:SwarmNetwork", tenant, None, opts)
        self.name = names.network_name(platform, tenant)
        self.network = docker.Network(
            f"{tenant}_net",
            name=self.name,
            driver="overlay",
            # `docker run --network` (backups, drills, the tests' probes) may join it
            attachable=True,
            options={"encrypted": ""} if encrypted else None,
            labels=[
                docker.NetworkLabelArgs(label=k, value=v)
                for k, v in labels(tenant, "", "network").items()
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"name": self.name})


def _secret_files(
    spec: ContainerSpec, names_: frozenset[str], parent: pulumi.Resource
) -> list[docker.ServiceTaskSpecContainerSpecSecretArgs]:
    """One Docker secret per secret env value, mounted as /run/secrets/<NAME>.

    Swarm secrets cannot change: the name carries a digest of the value, so a new value is
    a new secret the service rolls to (the old one goes once no task uses it). The digest
    tells nothing to whoever can list secrets: that is a manager, who can read every
    secret anyway by mounting it into a task of their own.
    """
    out = []
    for name in sorted(names_):
        value = spec.env[name]
        digest = hashlib.sha256(f"{spec.name}/{name}/{value}".encode()).hexdigest()[:12]
        secret = docker.Secret(
            f"{spec.tenant}_{spec.deployment}_{name}",
            name=f"{spec.name}_{name}_{digest}",
            data=pulumi.Output.secret(base64.b64encode(value.encode()).decode()),
            labels=[docker.SecretLabelArgs(label=k, value=v) for k, v in spec.labels.items()],
            opts=pulumi.ResourceOptions(parent=parent),
        )
        out.append(
            docker.ServiceTaskSpecContainerSpecSecretArgs(
                secret_id=secret.id,
                secret_name=secret.name,
                file_name=f"{sa.SECRETS_DIR}/{name}",
                file_mode=0o444,  # the image's user, whatever its uid, reads it
            )
        )
    return out


class SwarmApp(pulumi.ComponentResource):
    """A web or API deployment: one replicated service."""

    def __init__(
        self,
        *,
        platform: str,
        spec: ContainerSpec,
        replicas: int,
        autoscaled: bool,
        network: SwarmNetwork,
        endpoint_mode: str,
        opts: pulumi.ResourceOptions,
    ) -> None:
        super().__init__(f"{PKG}:SwarmApp", f"{spec.tenant}_{spec.deployment}", None, opts)
        name = names.service_name(platform, spec.tenant, spec.deployment)
        secrets = _secret_files(spec, spec.secret_env, self)
        env = {**spec.env, **{f"{n}_FILE": f"{sa.SECRETS_DIR}/{n}" for n in spec.secret_env}}
        container = sa.container_spec(
            spec, env=env, secrets=secrets, secret_env=bool(spec.secret_env)
        )
        self.service = docker.Service(
            f"{spec.tenant}_{spec.deployment}",
            name=name,
            labels=sa.service_labels(spec),
            task_spec=sa.task_spec(spec, container, networks=[(network.network.id, [name])]),
            mode=sa.replicated(replicas),
            endpoint_spec=docker.ServiceEndpointSpecArgs(mode=endpoint_mode),
            **sa.rolling("start-first"),
            opts=pulumi.ResourceOptions(
                parent=self,
                # the agent owns the live count of an autoscaled service
                ignore_changes=["mode.replicated.replicas"] if autoscaled else None,
            ),
        )


class SwarmDatabase(pulumi.ComponentResource):
    """PostgreSQL as one task on a node labelled hosting.db=true, password from a secret."""

    def __init__(
        self,
        *,
        platform: str,
        spec: ContainerSpec,
        network: SwarmNetwork,
        endpoint_mode: str,
        opts: pulumi.ResourceOptions,
    ) -> None:
        super().__init__(f"{PKG}:SwarmDatabase", f"{spec.tenant}_{spec.deployment}", None, opts)
        name = names.service_name(platform, spec.tenant, spec.deployment)
        secrets = _secret_files(spec, frozenset({"POSTGRES_PASSWORD"}), self)
        env = {k: v for k, v in spec.env.items() if k != "POSTGRES_PASSWORD"}
        env["POSTGRES_PASSWORD_FILE"] = f"{sa.SECRETS_DIR}/POSTGRES_PASSWORD"
        # WAL archiving binds a folder of the host that runs `hosting`: not on a swarm node.
        local = replace(
            spec,
            command=None,
            mounts=tuple(m for m in spec.mounts if m.kind == "volume"),
            ports=(),
        )
        container = sa.container_spec(local, env=env, secrets=secrets)
        self.service = docker.Service(
            f"{spec.tenant}_{spec.deployment}",
            name=name,
            labels=sa.service_labels(spec),
            # apps find it by the docker target's container name (${db.host})
            task_spec=sa.task_spec(
                local,
                container,
                networks=[(network.network.id, [spec.name, name])],
                constraints=[DATABASE_NODE],
            ),
            mode=sa.replicated(1),
            endpoint_spec=docker.ServiceEndpointSpecArgs(mode=endpoint_mode),
            **sa.rolling("stop-first"),  # two servers must never open one data directory
            opts=pulumi.ResourceOptions(parent=self),
        )


class SwarmEdge(pulumi.ComponentResource):
    """Caddy as one task on the node where `hosting` runs (a manager), on 80/443 of that
    node (host mode)."""

    def __init__(
        self,
        *,
        spec: ContainerSpec,
        networks: list[SwarmNetwork],
        endpoint_mode: str,
        node_id: str | None,
        opts: pulumi.ResourceOptions,
    ) -> None:
        super().__init__(f"{PKG}:SwarmEdge", "edge", None, opts)
        container = sa.container_spec(spec, env=dict(spec.env))
        self.service = docker.Service(
            "edge",
            name=spec.name,
            labels=sa.service_labels(spec),
            task_spec=sa.task_spec(
                spec,
                container,
                networks=[(n.network.id, []) for n in networks],
                constraints=[edge_constraint(node_id)],
                reserve=False,
            ),
            mode=sa.replicated(1),
            endpoint_spec=docker.ServiceEndpointSpecArgs(
                mode=endpoint_mode,
                ports=[
                    docker.ServiceEndpointSpecPortArgs(
                        target_port=p.internal, published_port=p.external, publish_mode="host"
                    )
                    for p in spec.ports
                ],
            ),
            **sa.rolling("stop-first"),  # the node's ports: one task at a time
            opts=pulumi.ResourceOptions(parent=self),
        )


def build_swarm(spec: Spec, settings: ProgramSettings, desired: Desired | None = None) -> None:
    platform = spec.platform.name
    desired = desired or desired_containers(spec, settings)
    provider = docker.Provider("docker", host=spec.platform.docker.host)
    root = pulumi.ResourceOptions(providers=[provider])
    networks: dict[str, SwarmNetwork] = {}
    mode = spec.platform.swarm.endpoint_mode
    for tid, tenant in spec.tenants.items():
        networks[tid] = net = SwarmNetwork(
            platform, tid, spec.platform.swarm.encrypted_networks, root
        )
        pulumi.export(tid, {"plan": tenant.plan, "billing_cycle": tenant.billing_cycle})
        for did, dep in tenant.deployments.items():
            key = f"{tid}/{did}"
            status = status_of(tid, dep, settings)
            if isinstance(dep, DatabaseDeployment):
                access = settings.databases[key]
                container = desired.databases[(tid, did)]
                if container is not None:
                    SwarmDatabase(
                        platform=platform,
                        spec=container,
                        network=net,
                        endpoint_mode=mode,
                        opts=root,
                    )
                # on no host port: reached from its tenant's network, by its docker-target name
                host = names.container_name(platform, tid, did, 0)
                export_database(key, did, access, status, host, POSTGRES_PORT)
                continue
            urls = urls_of(tid, did, dep, spec.platform.domain, settings)
            replicas = desired.apps.get((tid, did), [])
            if replicas:
                SwarmApp(
                    platform=platform,
                    spec=replicas[0],
                    replicas=len(replicas),
                    autoscaled=dep.autoscale is not None,
                    network=net,
                    endpoint_mode=mode,
                    opts=root,
                )
            pulumi.export(
                key,
                {"type": dep.type, "status": status, "replicas": len(replicas), "urls": urls},
            )
    SwarmEdge(
        spec=desired.edge,
        networks=list(networks.values()),
        endpoint_mode=mode,
        node_id=settings.edge_node_id,
        opts=root,
    )
