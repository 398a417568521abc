"""PgBouncer's own counts for pooled databases (`pooling:`): clients connected, clients
waiting for a server connection, and server connections open, from `SHOW POOLS` on the
admin console. The agent runs psql inside the pooler container, on its local socket, as the
image's user (peer authentication, SHOW commands only: hosting.stacks.pooler), so no
password is needed and nothing is reachable from outside the container."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, replace

from hosting.metering.samples import MetricSample
from hosting.spec.models import DatabaseDeployment, Spec
from hosting.stacks.pooler import CONSOLE_USER, POOLER_PORT, SOCKET_DIR, pooler_name

TIMEOUT_S = 10.0
_SERVER_COLUMNS = ("sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login")


@dataclass(frozen=True)
class PoolStats:
    clients: int  # client connections to the pooler: active and waiting
    waiting: int  # clients waiting for a server connection (the pool is too small)
    servers: int  # server connections the pooler holds open


def parse_show_pools(text: str) -> PoolStats:
    """psql's unaligned output of SHOW POOLS (header first, `|` between fields), summed over
    the pools of the served database; the console's own pool is left out."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return PoolStats(0, 0, 0)
    header = lines[0].split("|")
    clients = waiting = servers = 0
    for line in lines[1:]:
        row = dict(zip(header, line.split("|"), strict=True))
        if row.get("database") == "pgbouncer":
            continue
        clients += int(row["cl_active"]) + int(row["cl_waiting"])
        waiting += int(row["cl_waiting"])
        servers += sum(int(row[c]) for c in _SERVER_COLUMNS if c in row)
    return PoolStats(clients, waiting, servers)


def read_pools(docker_host: str, container: str) -> PoolStats | None:
    """None when the pooler does not answer (stopped, starting, gone)."""
    if shutil.which("docker") is None:
        return None
    args = [
        "docker", "exec", container, "psql", "-X", "-A", "-q", "-P", "footer=off",
        "-h", SOCKET_DIR, "-p", str(POOLER_PORT), "-U", CONSOLE_USER,
        "-c", "SHOW POOLS", "pgbouncer",
    ]  # fmt: skip
    try:
        proc = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            env={**os.environ, "DOCKER_HOST": docker_host},
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None
    if proc.returncode != 0:
        return None
    return parse_show_pools(proc.stdout)


def pool_stats(spec: Spec) -> dict[tuple[str, str], PoolStats]:
    """(tenant, deployment) → counts, for every pooled database whose pooler answers."""
    out = {}
    for tid, tenant in spec.tenants.items():
        for did, dep in tenant.deployments.items():
            if not isinstance(dep, DatabaseDeployment) or dep.pooling is None or dep.stopped:
                continue
            found = read_pools(spec.platform.docker.host, pooler_name(spec.platform.name, tid, did))
            if found is not None:
                out[(tid, did)] = found
    return out


def with_pool(sample: MetricSample, stats: PoolStats | None) -> MetricSample:
    if stats is None:
        return sample
    return replace(
        sample, pool_clients=stats.clients, pool_waiting=stats.waiting, pool_servers=stats.servers
    )
