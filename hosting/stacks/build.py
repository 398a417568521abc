"""The inline Pulumi program: spec → pulumi_docker resources (SPEC.md section 5)."""

from __future__ import annotations

from collections.abc import Callable

import pulumi
import pulumi_docker as docker

from hosting.edge.caddy import STATIC_ROOT
from hosting.spec import names
from hosting.spec.models import DatabaseDeployment, Spec
from hosting.stacks.components import App, Database, Edge, TenantNetwork
from hosting.stacks.refs import exports, resolve_env
from hosting.stacks.settings import ProgramSettings, default_settings


def program(
    spec: Spec, settings: ProgramSettings | None = None, *, keep_data: bool = True
) -> Callable[[], None]:
    """A callable for `pulumi.automation` (inline program) or `pulumi.runtime.set_mocks`.

    Without `settings` the program generates fresh credentials and placeholder secrets (fine
    for inspection under mocks); the provider passes the persisted ones.
    """

    def run() -> None:
        build(spec, settings or default_settings(spec), keep_data=keep_data)

    return run


def build(spec: Spec, settings: ProgramSettings, *, keep_data: bool = True) -> None:
    platform = spec.platform.name
    provider = docker.Provider("docker", host=spec.platform.docker.host)
    root = pulumi.ResourceOptions(providers=[provider])
    networks: dict[str, TenantNetwork] = {}
    static_binds: dict[str, str] = {}
    for tid, tenant in spec.tenants.items():
        networks[tid] = net = TenantNetwork(platform, tid, root)
        limits = spec.limits_of(tenant)
        table = exports(spec, settings, tid)
        for did, dep in tenant.deployments.items():
            key = f"{tid}/{did}"
            if isinstance(dep, DatabaseDeployment):
                access = settings.databases[key]
                Database(
                    platform=platform,
                    tenant=tid,
                    deployment=did,
                    dep=dep,
                    image=spec.platform.images.postgres,
                    limits=limits,
                    user=access.user,
                    password=access.password,
                    host_port=access.port,
                    bind_ip=str(spec.platform.database_bind),
                    network=net,
                    protect_data=keep_data,
                    opts=root,
                )
                pulumi.export(
                    f"{key}",
                    {
                        "type": "database",
                        "status": "stopped" if dep.stopped else "running",
                        "host": str(spec.platform.database_bind),
                        "port": access.port,
                        "user": access.user,
                        "password": pulumi.Output.secret(access.password),
                        "name": names.database_name(did),
                    },
                )
                continue
            url = f"https://{names.hostname(tid, did, dep.type, spec.platform.domain)}"
            if dep.static is not None:
                if not dep.stopped:
                    static_binds[f"{STATIC_ROOT}/{tid}/{did}"] = str(
                        (settings.base_dir / dep.static).resolve()
                    )
                pulumi.export(
                    key,
                    {
                        "type": dep.type,
                        "status": "stopped" if dep.stopped else "running",
                        "urls": [url],
                    },
                )
                continue
            env, secret_names = resolve_env(dep.env, table)
            for name in dep.secrets:
                env[name] = settings.secret_values[f"{key}/{name}"]
            App(
                platform=platform,
                tenant=tid,
                deployment=did,
                dep=dep,
                limits=limits,
                env=env,
                secret_env=secret_names | frozenset(dep.secrets),
                network=net,
                state_dir=settings.state_dir,
                base_dir=settings.base_dir,
                opts=root,
            )
            custom = [d for d in dep.domains if d in settings.verified_domains]
            pulumi.export(
                key,
                {
                    "type": dep.type,
                    "status": "stopped" if dep.stopped else "running",
                    "replicas": 0 if dep.stopped else dep.replicas,
                    "urls": [url, *(f"https://{d}" for d in custom)],
                },
            )
    Edge(
        platform=platform,
        image=spec.platform.images.proxy,
        networks=list(networks.values()),
        state_dir=settings.state_dir,
        static_binds=static_binds,
        http_port=settings.edge_http_port,
        https_port=settings.edge_https_port,
        publish_ip=settings.edge_publish_ip,
        ca_root=(
            str((settings.base_dir / spec.platform.acme.ca_root).resolve())
            if spec.platform.acme and spec.platform.acme.ca_root
            else None
        ),
        opts=root,
    )
