"""Health every 30 s (by default): container state, Docker's own health check, and for web
and API deployments an HTTP probe through the edge with the deployment's Host header on its
health path. After N consecutive failures the deployment's containers are restarted (the
product's auto-restart) and the restart is recorded as an event."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import duckdb

from hosting.errors import MeteringError
from hosting.metering.engine import Container, Engine
from hosting.metering.inventory import record_deployments
from hosting.spec import names
from hosting.spec.models import DatabaseDeployment, Spec
from hosting.store import connect, transaction

HEALTHY, UNHEALTHY, UNKNOWN = "healthy", "unhealthy", "unknown"


@dataclass(frozen=True)
class Probe:
    status: str
    detail: str
    http_status: int | None = None
    latency_ms: float | None = None


@dataclass(frozen=True)
class HealthResult:
    tenant: str
    deployment: str
    status: str
    detail: str
    http_status: int | None
    latency_ms: float | None
    failures: int
    restarted: bool = False


class _SniConnection(http.client.HTTPSConnection):
    """HTTPS to the edge's address with the deployment's name as SNI: the edge picks the
    site's certificate by it. Not verified: the probe asks whether the app answers, and a
    local edge may use its internal CA."""

    def __init__(self, address: str, port: int, server_name: str, timeout: float) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        super().__init__(address, port, timeout=timeout, context=context)
        self._server_name = server_name
        self._context = context

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        try:
            self.sock = self._context.wrap_socket(sock, server_hostname=self._server_name)
        except OSError:
            sock.close()
            raise


def http_probe(edge_url: str, host: str, path: str, timeout: float) -> Probe:
    """GET path on the edge with Host: host; any answer below 400 is healthy.

    Give an https:// edge URL when the edge serves HTTPS: over plain HTTP it answers every
    site with a redirect, which says nothing about the app behind it.
    """
    url = urlparse(edge_url)
    address = url.hostname or "127.0.0.1"
    conn: http.client.HTTPConnection
    if url.scheme == "https":
        conn = _SniConnection(address, url.port or 443, host, timeout)
    else:
        conn = http.client.HTTPConnection(address, url.port or 80, timeout=timeout)
    started = time.monotonic()
    try:
        conn.request("GET", path, headers={"Host": host, "User-Agent": "hosting-health/1"})
        resp = conn.getresponse()
        resp.read(65536)
    except (OSError, http.client.HTTPException) as exc:
        return Probe(UNHEALTHY, f"GET {path}: {exc or type(exc).__name__}")
    finally:
        conn.close()
    latency = round((time.monotonic() - started) * 1000, 3)
    ok = resp.status < 400
    detail = f"GET {path}: HTTP {resp.status}"
    return Probe(HEALTHY if ok else UNHEALTHY, detail, resp.status, latency)


ProbeFn = Callable[[str, str, str, float], Probe]


@dataclass(frozen=True)
class _Target:
    tenant: str
    deployment: str
    kind: str
    host: str
    path: str
    timeout: float
    containers: tuple[Container, ...]


def _state_probe(t: _Target) -> Probe | None:
    """A verdict from the containers alone, or None when the HTTP probe decides."""
    if not t.containers:
        return Probe(UNKNOWN, "no container")
    down = [c for c in t.containers if c.state != "running"]
    if down:
        return Probe(UNHEALTHY, f"container {down[0].name} is {down[0].state or 'missing'}")
    sick = [c for c in t.containers if c.health == "unhealthy"]
    if sick:
        return Probe(UNHEALTHY, f"container {sick[0].name} fails its Docker health check")
    return None


def health_cycle(
    store_path: Path,
    engine: Engine,
    spec: Spec,
    *,
    edge_url: str = "https://127.0.0.1:443",
    restart_after: int = 3,
    probe: ProbeFn = http_probe,
    now: datetime | None = None,
) -> list[HealthResult]:
    stamp = now or datetime.now(UTC).replace(tzinfo=None)
    by_dep: dict[tuple[str, str], list[Container]] = {}
    for c in engine.containers(all=True):
        by_dep.setdefault((c.tenant, c.deployment), []).append(c)
    targets = []
    for tid, tenant in spec.tenants.items():
        for did, dep in tenant.deployments.items():
            if dep.stopped or (not isinstance(dep, DatabaseDeployment) and dep.static):
                continue  # nothing runs: a static site is the edge's own health
            path = "/" if isinstance(dep, DatabaseDeployment) else dep.health.path
            timeout = 5.0 if isinstance(dep, DatabaseDeployment) else float(dep.health.timeout_s)
            host = names.hostname(tid, did, dep.type, spec.platform.domain)
            found = tuple(sorted(by_dep.get((tid, did), []), key=lambda c: c.name))
            targets.append(_Target(tid, did, dep.type, host, path, timeout, found))

    def check(t: _Target) -> Probe:
        verdict = _state_probe(t)
        if verdict is not None or t.kind == "database":
            return verdict or Probe(HEALTHY, "container running")
        return probe(edge_url, t.host, t.path, t.timeout)

    with ThreadPoolExecutor(max_workers=16) as pool:
        probes = list(pool.map(check, targets))

    results: list[HealthResult] = []
    to_restart: list[_Target] = []
    with connect(store_path) as conn, transaction(conn):
        failures = {
            (r[0], r[1]): int(r[2])
            for r in conn.execute(
                "SELECT tenant, deployment, failures FROM health_state"
            ).fetchall()
        }
        for t, p in zip(targets, probes, strict=True):
            count = failures.get((t.tenant, t.deployment), 0)
            count = count + 1 if p.status == UNHEALTHY else 0 if p.status == HEALTHY else count
            failures[(t.tenant, t.deployment)] = count
            if count >= restart_after and t.containers:
                to_restart.append(t)
            results.append(
                HealthResult(
                    t.tenant,
                    t.deployment,
                    p.status,
                    p.detail,
                    p.http_status,
                    p.latency_ms,
                    count,
                )
            )
        if results:
            conn.execute(
                "INSERT INTO health_checks (tenant, deployment, checked_at, status, detail,"
                " http_status, latency_ms) SELECT unnest($1::VARCHAR[]),"
                " unnest($2::VARCHAR[]), $3::TIMESTAMP, unnest($4::VARCHAR[]),"
                " unnest($5::VARCHAR[]), unnest($6::INTEGER[]), unnest($7::DOUBLE[])",
                [
                    [r.tenant for r in results],
                    [r.deployment for r in results],
                    stamp,
                    [r.status for r in results],
                    [r.detail for r in results],
                    [r.http_status for r in results],
                    [r.latency_ms for r in results],
                ],
            )
        _save_failures(conn, failures, stamp)
        health = {(r.tenant, r.deployment): r.status for r in results}
        record_deployments(conn, spec, by_dep, health, stamp)
    restarted = _restart(store_path, engine, to_restart)
    return [
        HealthResult(**{**r.__dict__, "restarted": (r.tenant, r.deployment) in restarted})
        for r in results
    ]


def _save_failures(
    conn: duckdb.DuckDBPyConnection, failures: dict[tuple[str, str], int], stamp: datetime
) -> None:
    conn.execute("DELETE FROM health_state")
    if failures:
        keys = sorted(failures)
        conn.execute(
            "INSERT INTO health_state (tenant, deployment, failures, updated_at)"
            " SELECT unnest($1::VARCHAR[]), unnest($2::VARCHAR[]),"
            " unnest($3::INTEGER[]), $4::TIMESTAMP",
            [[k[0] for k in keys], [k[1] for k in keys], [failures[k] for k in keys], stamp],
        )


def _restart(store_path: Path, engine: Engine, targets: list[_Target]) -> set[tuple[str, str]]:
    """Restart, then record it and reset the count: a crash in between restarts again."""
    done: dict[tuple[str, str], str] = {}
    for t in targets:
        errors = []
        for c in t.containers:
            try:
                engine.restart(c.id)
            except MeteringError as exc:
                errors.append(exc.message)
        names_ = ", ".join(c.name for c in t.containers)
        done[(t.tenant, t.deployment)] = (
            f"restarted {names_}" if not errors else f"restart of {names_} failed: {errors[0]}"
        )
    if not done:
        return set()
    stamp = datetime.now(UTC).replace(tzinfo=None)
    with connect(store_path) as conn, transaction(conn):
        for (tenant, deployment), detail in done.items():
            conn.execute(
                "INSERT INTO metering_events VALUES (?, ?, ?, 'restart', ?, ?)",
                [str(uuid.uuid4()), tenant, deployment, detail, stamp],
            )
            conn.execute(
                "UPDATE health_state SET failures = 0, updated_at = ?"
                " WHERE tenant = ? AND deployment = ?",
                [stamp, tenant, deployment],
            )
    return set(done)
