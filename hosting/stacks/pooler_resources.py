"""The pooler's Pulumi resources (`pooling:`): one hardened container beside its database."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker

from hosting.stacks.components import PKG, Database, TenantNetwork
from hosting.stacks.containers import ContainerSpec
from hosting.stacks.docker_args import container_args, io_throttle


class Pooler(pulumi.ComponentResource):
    """PgBouncer for one database, on its tenant's network only. Its config is host files
    (hosting.stacks.pooler), so no Pulumi input carries the SCRAM verifier."""

    def __init__(
        self,
        *,
        tenant: str,
        deployment: str,
        container: ContainerSpec,
        pulled: docker.RemoteImage,
        network: TenantNetwork,
        database: Database,
        opts: pulumi.ResourceOptions,
    ) -> None:
        super().__init__(f"{PKG}:Pooler", f"{tenant}_{deployment}", None, opts)
        self.container = docker.Container(
            f"{tenant}_{deployment}_pooler",
            **container_args(
                container,
                image_id=pulled.image_id,
                network_ids={network.name: network.network.name},
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                delete_before_replace=True,
                depends_on=[database.container] if database.container else [],
                transforms=io_throttle(container),
            ),
        )
