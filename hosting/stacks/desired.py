"""Every container the spec asks for, as typed specs: the program declares exactly these, and
the docker tests start exactly these on a real engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hosting.databases import upgrade
from hosting.databases.replication import replica_volume_dir
from hosting.edge.caddy import STATIC_ROOT
from hosting.provider.volume_quota import device
from hosting.sources.build import plan_build, site_dir
from hosting.sources.dockerfile import PROBE
from hosting.spec import names
from hosting.spec.models import DatabaseDeployment, Spec
from hosting.stacks import containers, pooler
from hosting.stacks.build_context import content_tag
from hosting.stacks.containers import ContainerSpec
from hosting.stacks.refs import exports, resolve_env
from hosting.stacks.settings import ProgramSettings
from hosting.stacks.wal_archive import archive_dir


@dataclass(frozen=True)
class Desired:
    apps: dict[tuple[str, str], list[ContainerSpec]]  # empty list: stopped
    databases: dict[tuple[str, str], ContainerSpec | None]  # None: stopped
    static_binds: dict[str, str]  # edge path → host folder
    edge: ContainerSpec
    poolers: dict[tuple[str, str], ContainerSpec] = field(default_factory=dict)  # `pooling:`
    # A database's read replicas (`replicas: N`), 1…N; none while the database is stopped.
    read_replicas: dict[tuple[str, str], list[ContainerSpec]] = field(default_factory=dict)

    def every_container(self) -> list[ContainerSpec]:
        apps = [c for replicas in self.apps.values() for c in replicas]
        dbs = [c for c in self.databases.values() if c is not None]
        standbys = [c for replicas in self.read_replicas.values() for c in replicas]
        return [*apps, *dbs, *self.poolers.values(), *standbys, self.edge]


def image_of(spec: Spec, tenant: str, deployment: str, base_dir: Path = Path(".")) -> str:
    dep = spec.tenants[tenant].deployments[deployment]
    if isinstance(dep, DatabaseDeployment):
        # the file's version: a different recorded one is an upgrade, refused or migrated
        # before the program runs (hosting.databases.upgrade)
        return spec.platform.images.postgres_for(dep.version)
    if dep.image is not None:
        return dep.image
    if dep.source is not None:
        # tagged by content: an unchanged source names the same image, so nothing changes
        return plan_build(spec, tenant, deployment, base_dir).tag
    if dep.build is not None and spec.platform.target == "swarm":
        # built before the engine runs and loaded on each node (hosting.provider.swarm_images)
        b = dep.build
        context = (base_dir / b.context).resolve()
        return content_tag(spec.platform.name, tenant, deployment, context, b.dockerfile, b.args)
    return f"hosting-build/{spec.platform.name}_{tenant}_{deployment}:latest"


def database_image(spec: Spec, settings: ProgramSettings, tenant: str, deployment: str) -> str:
    """The image of the version the data is recorded at: the file's, unless an upgrade is
    pending outside this apply's scope (`apply --tenant`), which leaves it as it runs."""
    dep = spec.tenants[tenant].deployments[deployment]
    assert isinstance(dep, DatabaseDeployment)
    access = settings.databases.get(f"{tenant}/{deployment}")
    version = access.version if access is not None and access.version else dep.version
    return spec.platform.images.postgres_for(version)


def database_volume_device(
    settings: ProgramSettings, tenant: str, deployment: str, replica: int = 0
) -> str | None:
    """The directory a database's (or its read replica's) volume binds, in its tenant's
    filesystem of the plan's storage (None: a plain named volume)."""
    if settings.volume_root is None or f"{tenant}/{deployment}" in settings.unbounded_volumes:
        return None
    access = settings.databases.get(f"{tenant}/{deployment}")
    folder = (
        replica_volume_dir(deployment, replica)
        if replica
        else upgrade.volume_folder(deployment, access)
    )
    return str(device(settings.volume_root, tenant, folder))


def desired_containers(spec: Spec, settings: ProgramSettings) -> Desired:
    platform = spec.platform.name
    apps: dict[tuple[str, str], list[ContainerSpec]] = {}
    dbs: dict[tuple[str, str], ContainerSpec | None] = {}
    poolers: dict[tuple[str, str], ContainerSpec] = {}
    standbys: dict[tuple[str, str], list[ContainerSpec]] = {}
    static_binds: dict[str, str] = {}
    for tid, tenant in spec.tenants.items():
        limits = spec.limits_of(tenant)
        if settings.host_cpus is not None and limits.cpus > settings.host_cpus:
            limits = limits.model_copy(update={"cpus": settings.host_cpus})
        table = exports(spec, settings, tid)
        for did, dep in tenant.deployments.items():
            key = f"{tid}/{did}"
            if isinstance(dep, DatabaseDeployment):
                access = settings.databases[key]
                dbs[(tid, did)] = (
                    None
                    if dep.stopped
                    else containers.database_container(
                        platform=platform,
                        tenant=tid,
                        deployment=did,
                        image=database_image(spec, settings, tid, did),
                        volume=upgrade.volume_name(platform, tid, did, access),
                        limits=limits,
                        user=access.user,
                        password=access.password,
                        host_port=access.port,
                        bind_ip=str(spec.platform.database_bind),
                        io_device=settings.io_device,
                        volume_device=database_volume_device(settings, tid, did),
                        wal_archive_dir=str(archive_dir(settings.state_dir.resolve(), tid, did)),
                    )
                )
                if dep.pooling is not None and not dep.stopped:
                    poolers[(tid, did)] = pooler.container_for(spec, settings, tid, did, limits)
                if dep.replicas and not dep.stopped:
                    assert access.replication_password is not None  # ensure_databases set it
                    primary = dbs[(tid, did)]
                    assert primary is not None
                    standbys[(tid, did)] = [
                        containers.replica_container(
                            primary,
                            platform=platform,
                            index=index,
                            replication_password=access.replication_password,
                            volume_device=database_volume_device(settings, tid, did, index),
                        )
                        for index in range(1, dep.replicas + 1)
                    ]
                continue
            source = (
                plan_build(spec, tid, did, settings.base_dir) if dep.source is not None else None
            )
            if dep.static is not None or (source is not None and source.detected.static):
                # a source build with no server is served like `static`, from its output
                folder = (
                    (settings.base_dir / dep.static).resolve()
                    if dep.static is not None
                    else site_dir(settings.state_dir.resolve(), tid, did)
                )
                if not dep.stopped:
                    static_binds[f"{STATIC_ROOT}/{tid}/{did}"] = str(folder)
                continue
            if dep.stopped or tid in settings.suspended:
                apps[(tid, did)] = []
                continue
            env, secret_names = resolve_env(dep.env, table)
            for name in dep.secrets:
                env[name] = settings.secret_values[f"{key}/{name}"]
            port = dep.listen_port
            assert port is not None  # only a static site has none, and it was served above
            apps[(tid, did)] = [
                containers.app_container(
                    platform=platform,
                    tenant=tid,
                    deployment=did,
                    kind=dep.type,
                    replica=replica,
                    image=(
                        source.tag
                        if source is not None
                        else image_of(spec, tid, did, settings.base_dir)
                    ),
                    port=port,
                    limits=limits,
                    env=env,
                    secret_env=secret_names | frozenset(dep.secrets),
                    health_path=dep.health.path,
                    health_interval_s=dep.health.interval_s,
                    health_timeout_s=dep.health.timeout_s,
                    health_retries=dep.health.retries,
                    command=tuple(dep.command) if dep.command else None,
                    io_device=settings.io_device,
                    health_probe=PROBE if source is not None else None,
                )
                for replica in range(dep.replica_count)
            ]
    acme = spec.platform.acme
    edge = containers.edge_container(
        platform=platform,
        image=spec.platform.images.proxy,
        tenant_networks=tuple(names.network_name(platform, t) for t in spec.tenants),
        admin_dir=str((settings.state_dir / "edge" / "admin").resolve()),
        log_dir=str((settings.state_dir / "edge" / "logs").resolve()),
        static_binds=static_binds,
        http_port=settings.edge_http_port,
        https_port=settings.edge_https_port,
        publish_ip=settings.edge_publish_ip,
        ca_root=(
            str((settings.base_dir / acme.ca_root).resolve()) if acme and acme.ca_root else None
        ),
    )
    return Desired(apps, dbs, static_binds, edge, poolers, standbys)
