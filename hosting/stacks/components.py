"""One Pulumi component per kind: tenant network, app (web/API), database, edge.

Each takes the typed container specs from `desired.py`; nothing here decides a setting.
"""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_docker as docker

from hosting.provider.volume_quota import driver_opts
from hosting.spec import names
from hosting.spec.models import ApiDeployment, WebDeployment
from hosting.stacks import build_context
from hosting.stacks.containers import ContainerSpec, labels
from hosting.stacks.docker_args import container_args, io_throttle

PKG = "hosting:stacks"
# Logical names join ids with "_": ids are DNS labels (no "_"), so tenant `a-b` + deployment
# `c` can never collide with tenant `a` + deployment `b-c`, and a name splits back unambiguously.


def _network_labels(tenant: str) -> list[docker.NetworkLabelArgs]:
    return [
        docker.NetworkLabelArgs(label=k, value=v) for k, v in labels(tenant, "", "network").items()
    ]


def _volume_labels(tenant: str, deployment: str, kind: str) -> list[docker.VolumeLabelArgs]:
    return [
        docker.VolumeLabelArgs(label=k, value=v)
        for k, v in labels(tenant, deployment, kind).items()
    ]


def _network_ids(networks: list[TenantNetwork]) -> dict[str, pulumi.Input[str]]:
    # The network's name output (not the plain string) orders containers after networks.
    return {n.name: n.network.name for n in networks}


def pulled_image(name: str, opts: pulumi.ResourceOptions) -> docker.RemoteImage:
    """One image resource per image name, shared by every deployment that runs it: pulled
    once, and fewer resources for the engine to track."""
    return docker.RemoteImage(f"image:{name}", name=name, keep_locally=True, opts=opts)


class TenantNetwork(pulumi.ComponentResource):
    """A tenant's own bridge network: only its containers and the edge are on it."""

    def __init__(self, platform: str, tenant: str, opts: pulumi.ResourceOptions) -> None:
        super().__init__(f"{PKG}:TenantNetwork", tenant, None, opts)
        self.name = names.network_name(platform, tenant)
        self.network = docker.Network(
            f"{tenant}_net",
            name=self.name,
            driver="bridge",
            labels=_network_labels(tenant),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"name": self.name})


class App(pulumi.ComponentResource):
    """A web or API deployment: its image (pulled or built) and one container per replica."""

    def __init__(
        self,
        *,
        tenant: str,
        deployment: str,
        dep: WebDeployment | ApiDeployment,
        image: str,
        pulled: docker.RemoteImage | None,
        replicas: list[ContainerSpec],
        network: TenantNetwork,
        state_dir: Path,
        base_dir: Path,
        opts: pulumi.ResourceOptions,
    ) -> None:
        super().__init__(f"{PKG}:App", f"{tenant}_{deployment}", None, opts)
        if dep.build is not None:
            log_file = state_dir / "logs" / "build" / f"{tenant}_{deployment}.log"
            context = (base_dir / dep.build.context).resolve()
            self.image = docker.RemoteImage(
                f"{tenant}_{deployment}_image",
                name=image,
                triggers={"context": build_context.digest(context)},
                build=docker.RemoteImageBuildArgs(
                    context=str(context),
                    dockerfile=dep.build.dockerfile,
                    build_args=dict(dep.build.args),
                    build_log_file=str(log_file),
                    labels=labels(tenant, deployment, dep.type),
                ),
                keep_locally=True,
                opts=pulumi.ResourceOptions(parent=self),
            )
        else:
            assert pulled is not None
            self.image = pulled
        self.containers = [
            docker.Container(
                f"{tenant}_{deployment}_{i}",
                # image_id, not the repo digest: a re-tag without change causes no churn
                **container_args(
                    cspec, image_id=self.image.image_id, network_ids=_network_ids([network])
                ),
                # Names collide, so a replacement must delete first; the edge's try_duration
                # holds requests meanwhile (see hosting/edge/caddy.py).
                opts=pulumi.ResourceOptions(
                    parent=self, delete_before_replace=True, transforms=io_throttle(cspec)
                ),
            )
            for i, cspec in enumerate(replicas)
        ]
        # no register_outputs({}): nothing to publish, and one RPC less per component


class Database(pulumi.ComponentResource):
    """PostgreSQL on a named volume; the volume outlives the container (and `destroy`)."""

    def __init__(
        self,
        *,
        platform: str,
        tenant: str,
        deployment: str,
        pulled: docker.RemoteImage,
        container: ContainerSpec | None,
        network: TenantNetwork,
        protect_data: bool,
        opts: pulumi.ResourceOptions,
        volume_device: str | None = None,
        replicas: list[ContainerSpec] | None = None,
        volume_name: str | None = None,  # a major upgrade's own (hosting.databases.upgrade)
    ) -> None:
        super().__init__(f"{PKG}:Database", f"{tenant}_{deployment}", None, opts)
        self.volume = docker.Volume(
            f"{tenant}_{deployment}_data",
            name=volume_name or names.volume_name(platform, tenant, deployment),
            labels=_volume_labels(tenant, deployment, "database"),
            # A directory in the tenant's filesystem of the plan's storage (volume_quota).
            driver="local" if volume_device else None,
            driver_opts=driver_opts(volume_device) if volume_device else None,
            # `destroy` keeps data unless --delete-data: retain_on_delete leaves the volume.
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=protect_data),
        )
        self.image = pulled
        self.container = None
        if container is not None:
            self.container = docker.Container(
                f"{tenant}_{deployment}_0",
                **container_args(
                    container, image_id=self.image.image_id, network_ids=_network_ids([network])
                ),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    delete_before_replace=True,
                    depends_on=[self.volume],
                    transforms=io_throttle(container),
                ),
            )
        for standby in replicas or []:
            self._read_replica(tenant, deployment, standby, network)
        # no register_outputs({}): nothing to publish, and one RPC less per component

    def _read_replica(
        self, tenant: str, deployment: str, standby: ContainerSpec, network: TenantNetwork
    ) -> None:
        # A replica's volume holds a copy, cloned again when it is new: not retained.
        [mount] = standby.mounts
        index = standby.name.rsplit("_", 1)[1]
        volume = docker.Volume(
            f"{tenant}_{deployment}_replica{index}",
            name=mount.source,
            labels=_volume_labels(tenant, deployment, "replica"),
            driver="local" if mount.device else None,
            driver_opts=driver_opts(mount.device) if mount.device else None,
            opts=pulumi.ResourceOptions(parent=self),
        )
        docker.Container(
            f"{tenant}_{deployment}_{index}",
            **container_args(
                standby, image_id=self.image.image_id, network_ids=_network_ids([network])
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                delete_before_replace=True,
                depends_on=[volume, *([self.container] if self.container else [])],
                transforms=io_throttle(standby),
            ),
        )


class Edge(pulumi.ComponentResource):
    """The one Caddy: joins every tenant network; its data volume keeps certificates."""

    def __init__(
        self,
        *,
        container: ContainerSpec,
        pulled: docker.RemoteImage,
        networks: list[TenantNetwork],
        protect_data: bool,
        opts: pulumi.ResourceOptions,
    ) -> None:
        super().__init__(f"{PKG}:Edge", "edge", None, opts)
        self.volumes = [
            docker.Volume(
                f"edge_{m.target.strip('/')}",
                name=m.source,
                labels=_volume_labels("", "edge", "edge"),
                # certificates and ACME accounts outlive `destroy`, unless --delete-data
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=protect_data),
            )
            for m in container.mounts
            if m.kind == "volume"
        ]
        self.image = pulled
        self.container = docker.Container(
            "edge",
            **container_args(
                container, image_id=self.image.image_id, network_ids=_network_ids(networks)
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                delete_before_replace=True,
                depends_on=self.volumes,
                # apply joins later tenants' networks live (provider/edge_links.py): a new
                # network here would replace the edge and cut every tenant off meanwhile
                ignore_changes=["networksAdvanced"],
            ),
        )
        # no register_outputs({}): nothing to publish, and one RPC less per component
