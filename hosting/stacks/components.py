"""One Pulumi component per kind: tenant network, app (web/API), static site, database, edge."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_docker as docker

from hosting.spec import names
from hosting.spec.models import ApiDeployment, DatabaseDeployment, Limits, WebDeployment
from hosting.stacks import containers
from hosting.stacks.containers import labels
from hosting.stacks.docker_args import container_args

PKG = "hosting:stacks"


def _network_labels(tenant: str, deployment: str, kind: str) -> list[docker.NetworkLabelArgs]:
    return [
        docker.NetworkLabelArgs(label=k, value=v)
        for k, v in labels(tenant, deployment, kind).items()
    ]


def _volume_labels(tenant: str, deployment: str, kind: str) -> list[docker.VolumeLabelArgs]:
    return [
        docker.VolumeLabelArgs(label=k, value=v)
        for k, v in labels(tenant, deployment, kind).items()
    ]


class TenantNetwork(pulumi.ComponentResource):
    """A tenant's own bridge network: only its containers and the edge are on it."""

    def __init__(self, platform: str, tenant: str, opts: pulumi.ResourceOptions) -> None:
        super().__init__(f"{PKG}:TenantNetwork", tenant, None, opts)
        self.name = names.network_name(platform, tenant)
        self.network = docker.Network(
            f"{tenant}-net",
            name=self.name,
            driver="bridge",
            labels=_network_labels(tenant, "", "network"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"name": self.name})


class App(pulumi.ComponentResource):
    """A web or API deployment: its image (pulled or built) and one container per replica."""

    def __init__(
        self,
        *,
        platform: str,
        tenant: str,
        deployment: str,
        dep: WebDeployment | ApiDeployment,
        limits: Limits,
        env: dict[str, str],
        secret_env: frozenset[str],
        network: TenantNetwork,
        state_dir: Path,
        base_dir: Path,
        opts: pulumi.ResourceOptions,
    ) -> None:
        super().__init__(f"{PKG}:App", f"{tenant}-{deployment}", None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if dep.build is not None:
            log_file = state_dir / "logs" / "build" / f"{tenant}_{deployment}.log"
            self.image = docker.RemoteImage(
                f"{tenant}-{deployment}-image",
                name=f"hosting-build/{platform}_{tenant}_{deployment}:latest",
                build=docker.RemoteImageBuildArgs(
                    context=str((base_dir / dep.build.context).resolve()),
                    dockerfile=dep.build.dockerfile,
                    build_args=dict(dep.build.args),
                    build_log_file=str(log_file),
                    labels=labels(tenant, deployment, dep.type),
                ),
                keep_locally=True,
                opts=child,
            )
        else:
            assert dep.image is not None
            self.image = docker.RemoteImage(
                f"{tenant}-{deployment}-image", name=dep.image, keep_locally=True, opts=child
            )
        self.containers: list[docker.Container] = []
        if dep.stopped:
            self.register_outputs({})
            return
        assert dep.port is not None
        for replica in range(dep.replicas):
            cspec = containers.app_container(
                platform=platform,
                tenant=tenant,
                deployment=deployment,
                kind=dep.type,
                replica=replica,
                image=dep.image or "",
                port=dep.port,
                limits=limits,
                env=env,
                secret_env=secret_env,
                health_path=dep.health.path,
                health_interval_s=dep.health.interval_s,
                health_timeout_s=dep.health.timeout_s,
                health_retries=dep.health.retries,
                command=tuple(dep.command) if dep.command else None,
            )
            self.containers.append(
                docker.Container(
                    f"{tenant}-{deployment}-{replica}",
                    **container_args(
                        cspec,
                        # image_id, not the repo digest: a re-tag without change causes no churn
                        image_id=self.image.image_id,
                        network_ids={network.name: network.network.name},
                    ),
                    # Names collide, so a replacement must delete first; the edge's
                    # try_duration holds requests meanwhile (see hosting/edge/caddy.py).
                    opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
                )
            )
        self.register_outputs({})


class Database(pulumi.ComponentResource):
    """PostgreSQL on a named volume; the volume outlives the container (and `destroy`)."""

    def __init__(
        self,
        *,
        platform: str,
        tenant: str,
        deployment: str,
        dep: DatabaseDeployment,
        image: str,
        limits: Limits,
        user: str,
        password: str,
        host_port: int,
        bind_ip: str,
        network: TenantNetwork,
        protect_data: bool,
        opts: pulumi.ResourceOptions,
    ) -> None:
        super().__init__(f"{PKG}:Database", f"{tenant}-{deployment}", None, opts)
        self.volume = docker.Volume(
            f"{tenant}-{deployment}-data",
            name=names.volume_name(platform, tenant, deployment),
            labels=_volume_labels(tenant, deployment, "database"),
            # `destroy` keeps data unless --delete-data: retain_on_delete leaves the volume.
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=protect_data),
        )
        self.image = docker.RemoteImage(
            f"{tenant}-{deployment}-image",
            name=image,
            keep_locally=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.container: docker.Container | None = None
        if not dep.stopped:
            cspec = containers.database_container(
                platform=platform,
                tenant=tenant,
                deployment=deployment,
                image=image,
                limits=limits,
                user=user,
                password=password,
                host_port=host_port,
                bind_ip=bind_ip,
            )
            self.container = docker.Container(
                f"{tenant}-{deployment}-0",
                **container_args(
                    cspec,
                    image_id=self.image.image_id,
                    network_ids={network.name: network.network.name},
                ),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    delete_before_replace=True,
                    depends_on=[self.volume],
                ),
            )
        self.register_outputs({})


class Edge(pulumi.ComponentResource):
    """The one Caddy: joins every tenant network; its data volume keeps certificates."""

    def __init__(
        self,
        *,
        platform: str,
        image: str,
        networks: list[TenantNetwork],
        state_dir: Path,
        static_binds: dict[str, str],
        http_port: int,
        https_port: int,
        publish_ip: str,
        ca_root: str | None,
        opts: pulumi.ResourceOptions,
    ) -> None:
        super().__init__(f"{PKG}:Edge", "edge", None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cspec = containers.edge_container(
            platform=platform,
            image=image,
            tenant_networks=tuple(n.name for n in networks),
            admin_dir=str((state_dir / "edge" / "admin").resolve()),
            log_dir=str((state_dir / "edge" / "logs").resolve()),
            static_binds=static_binds,
            http_port=http_port,
            https_port=https_port,
            publish_ip=publish_ip,
            ca_root=ca_root,
        )
        self.volumes = [
            docker.Volume(
                f"edge-{m.target.strip('/')}",
                name=m.source,
                labels=_volume_labels("", "edge", "edge"),
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
            )
            for m in cspec.mounts
            if m.kind == "volume"
        ]
        self.image = docker.RemoteImage("edge-image", name=image, keep_locally=True, opts=child)
        self.container = docker.Container(
            "edge",
            **container_args(
                cspec,
                image_id=self.image.image_id,
                network_ids={n.name: n.network.name for n in networks},
            ),
            opts=pulumi.ResourceOptions(
                parent=self, delete_before_replace=True, depends_on=self.volumes
            ),
        )
        self.register_outputs({})
