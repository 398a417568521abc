"""The product document's `deployments` table, kept by the health job: one row per
deployment in the file with its status, containers, hostnames, port, config and health.

Status follows the product's words: `pending` (declared, nothing running yet), `running`,
`stopped` (`stopped: true`), `failed` (containers exist but none runs). Config keeps the
file's own env (secrets live under `secrets:`, of which only the names are kept)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime

import duckdb

from hosting.metering.engine import Container
from hosting.spec import names
from hosting.spec.models import DatabaseDeployment, Spec

PENDING, RUNNING, STOPPED, FAILED = "pending", "running", "stopped", "failed"
POSTGRES_PORT = 5432


def status_of(stopped: bool, static: bool, containers: Sequence[Container], edge_up: bool) -> str:
    if stopped:
        return STOPPED
    if static:  # served by the edge itself
        return RUNNING if edge_up else PENDING
    if not containers:
        return PENDING
    return RUNNING if any(c.state == "running" for c in containers) else FAILED


def record_deployments(
    conn: duckdb.DuckDBPyConnection,
    spec: Spec,
    containers: Mapping[tuple[str, str], Sequence[Container]],
    health: Mapping[tuple[str, str], str],
    stamp: datetime,
    edge_up: bool,
) -> None:
    """Upsert every deployment of the file; forget the ones no longer in it. `edge_up`: this
    platform's edge container runs (another platform's edge on the host does not count)."""
    rows = []
    for tid, tenant in spec.tenants.items():
        for did, dep in tenant.deployments.items():
            found = sorted(containers.get((tid, did), ()), key=lambda c: c.name)
            port: int | None
            if isinstance(dep, DatabaseDeployment):
                static, port, domains = False, POSTGRES_PORT, []
                config: dict[str, object] = {"version": dep.version}
            else:
                static, port, domains = dep.static is not None, dep.listen_port, list(dep.domains)
                config = {
                    "source": dep.origin,
                    "image": dep.image,
                    "build": dep.build.context if dep.build else None,
                    "static": dep.static,
                    "replicas": (
                        dep.autoscale.model_dump() if dep.autoscale else dep.replica_count
                    ),
                    "health_path": dep.health.path,
                    "env": dict(dep.env),
                    "secrets": sorted(dep.secrets),
                }
            status = status_of(dep.stopped, static, found, edge_up)
            rows.append(
                [
                    tid,
                    did,
                    dep.type,
                    status,
                    found[0].id if found else None,
                    names.hostname(tid, did, dep.type, spec.platform.domain),
                    ",".join(domains) or None,
                    port,
                    json.dumps(config),
                    stamp if status == RUNNING else None,
                    health.get((tid, did), "unknown"),
                    stamp,
                ]
            )
    keep = [(r[0], r[1]) for r in rows]
    conn.execute(
        "DELETE FROM deployments WHERE (tenant, deployment) NOT IN"
        " (SELECT unnest($1::VARCHAR[]), unnest($2::VARCHAR[]))",
        [[k[0] for k in keep], [k[1] for k in keep]],
    )
    if rows:
        conn.executemany(
            "INSERT INTO deployments (tenant, deployment, deployment_type, status, container_id,"
            " subdomain, custom_domain, port, config, deployed_at, health_status, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (tenant, deployment) DO UPDATE SET"
            " deployment_type = excluded.deployment_type, status = excluded.status,"
            " container_id = excluded.container_id, subdomain = excluded.subdomain,"
            " custom_domain = excluded.custom_domain, port = excluded.port,"
            " config = excluded.config,"
            " deployed_at = coalesce(deployments.deployed_at, excluded.deployed_at),"
            " health_status = excluded.health_status, updated_at = excluded.updated_at",
            rows,
        )
