"""The inline Pulumi program: spec → pulumi_docker resources (SPEC.md section 5)."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pulumi
import pulumi_docker as docker

from hosting.databases import upgrade
from hosting.spec.models import DatabaseDeployment, Spec
from hosting.stacks.components import App, Database, Edge, TenantNetwork, pulled_image
from hosting.stacks.desired import (
    database_image,
    database_volume_device,
    desired_containers,
    image_of,
)
from hosting.stacks.exports import export_database, status_of, urls_of
from hosting.stacks.pooler_resources import Pooler
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


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while the engine registers resources.

    Pulumi's runtime keeps hundreds of thousands of objects alive during a run, so every
    generation-2 collection walks all of them: construction time grows quadratically (1,000
    deployments took 11 s with it, 4.8 s without). Reference counting still frees memory;
    cycles left by the run stay in memory until the process ends (see the end of this).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        # Whatever survived the run is the runtime's own long-lived state (or garbage a
        # one-shot CLI process never needs back): freezing it spares every later collection
        # from walking it again.
        gc.freeze()
        if was_enabled:
            gc.enable()


def build(spec: Spec, settings: ProgramSettings, *, keep_data: bool = True) -> None:
    platform = spec.platform.name
    desired = desired_containers(spec, settings)
    if spec.platform.target == "swarm":
        from hosting.stacks.swarm import build_swarm  # only its own program imports it

        build_swarm(spec, settings, desired)
        return
    provider = docker.Provider("docker", host=spec.platform.docker.host)
    root = pulumi.ResourceOptions(providers=[provider])
    networks: dict[str, TenantNetwork] = {}
    images: dict[str, docker.RemoteImage] = {}

    def pulled(name: str) -> docker.RemoteImage:
        if name not in images:
            images[name] = pulled_image(name, root)
        return images[name]

    for tid, tenant in spec.tenants.items():
        networks[tid] = net = TenantNetwork(platform, tid, root)
        # What `plan` compares against next time: the tenant's plan and cycle as applied.
        pulumi.export(tid, {"plan": tenant.plan, "billing_cycle": tenant.billing_cycle})
        for did, dep in tenant.deployments.items():
            key = f"{tid}/{did}"
            status = status_of(tid, dep, settings)
            if isinstance(dep, DatabaseDeployment):
                access = settings.databases[key]
                database = Database(
                    platform=platform,
                    tenant=tid,
                    deployment=did,
                    pulled=pulled(database_image(spec, settings, tid, did)),
                    container=desired.databases[(tid, did)],
                    network=net,
                    protect_data=keep_data,
                    opts=root,
                    volume_device=database_volume_device(settings, tid, did),
                    replicas=desired.read_replicas.get((tid, did), []),
                    volume_name=upgrade.volume_name(platform, tid, did, access),
                )
                if (tid, did) in desired.poolers:
                    pooler = desired.poolers[(tid, did)]
                    Pooler(
                        tenant=tid,
                        deployment=did,
                        container=pooler,
                        pulled=pulled(pooler.image),
                        network=net,
                        database=database,
                        opts=root,
                    )
                # published on platform.database_bind, at the port given once
                export_database(
                    key, did, access, status, str(spec.platform.database_bind), access.port
                )
                continue
            urls = urls_of(tid, did, dep, spec.platform.domain, settings)
            # not a static site, nor a source built as one; a stopped source is not built
            if (tid, did) in desired.apps and not (dep.source and dep.stopped):
                image = image_of(spec, tid, did, settings.base_dir)
                App(
                    tenant=tid,
                    deployment=did,
                    dep=dep,
                    image=image,
                    # a source build's image is local, tagged by content: "pulled" finds it
                    pulled=None if dep.build else pulled(image),
                    replicas=desired.apps[(tid, did)],
                    network=net,
                    state_dir=settings.state_dir,
                    base_dir=settings.base_dir,
                    opts=root,
                )
            replicas = len(desired.apps.get((tid, did), []))
            pulumi.export(
                key, {"type": dep.type, "status": status, "replicas": replicas, "urls": urls}
            )
    Edge(
        container=desired.edge,
        pulled=pulled(desired.edge.image),
        networks=list(networks.values()),
        protect_data=keep_data,
        opts=root,
    )
