"""One metrics cycle: container counters and access-log lines become one sample per
deployment, written with the new collector state in a single transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from hosting.metering.containers import Previous, Reader, Reading, Usage, usage_between
from hosting.metering.ingest import write_metrics
from hosting.metering.poolstats import pool_stats, with_pool
from hosting.metering.proxylog import HostStats, LogOffset, normalize_host, read_new
from hosting.metering.samples import MetricSample
from hosting.spec import names
from hosting.spec.models import DatabaseDeployment, Spec
from hosting.store import connect, transaction


def host_map(spec: Spec | None) -> dict[str, tuple[str, str]]:
    """Every host the edge serves → (tenant, deployment): generated names, custom domains
    and their www. variants (which the edge redirects, but logs all the same)."""
    hosts: dict[str, tuple[str, str]] = {}
    if spec is None:
        return hosts
    for tid, tenant in spec.tenants.items():
        for did, dep in tenant.deployments.items():
            if isinstance(dep, DatabaseDeployment):
                continue
            key = (tid, did)
            hosts[names.hostname(tid, did, dep.type, spec.platform.domain)] = key
            for domain in dep.domains:
                hosts[normalize_host(domain)] = key
                hosts.setdefault("www." + normalize_host(domain), key)
    return hosts


@dataclass
class MetricsResult:
    samples: int = 0
    containers: int = 0
    log_lines: int = 0
    bad_log_lines: int = 0
    unknown_hosts: list[str] = field(default_factory=list)
    log_errors: list[str] = field(default_factory=list)
    nodes: dict[str, int] = field(default_factory=dict)  # a swarm's: containers read per node
    unreached: dict[str, str] = field(default_factory=dict)  # nodes not read this time → why


@dataclass
class _Agg:
    cpu: float | None = None
    memory: int = 0
    rx: int = 0
    tx: int = 0
    containers: int = 0
    proxy: HostStats | None = None


def _previous(conn: duckdb.DuckDBPyConnection) -> dict[str, Previous]:
    rows = conn.execute(
        "SELECT container_id, started_at, read_at, cpu_ns, rx_bytes, tx_bytes"
        " FROM container_readings"
    ).fetchall()
    return {r[0]: Previous(r[1], r[2], int(r[3]), int(r[4]), int(r[5])) for r in rows}


def _offsets(conn: duckdb.DuckDBPyConnection) -> dict[str, LogOffset]:
    rows = conn.execute('SELECT path, inode, "offset" FROM proxy_log_offsets').fetchall()
    return {r[0]: LogOffset(r[0], int(r[1]), int(r[2])) for r in rows}


def _save_readings(
    conn: duckdb.DuckDBPyConnection, readings: Sequence[Reading], *, partial: bool
) -> None:
    # Only running containers keep a reading: a container that stopped starts a new life.
    # After a partial read (a node did not answer) the others keep theirs, or the next read
    # would count their whole life again; a stopped one's row is harmless until a full read
    # (its id never runs again, and a restart is a new StartedAt).
    if partial:
        conn.execute(
            "DELETE FROM container_readings WHERE container_id IN (SELECT unnest($1::VARCHAR[]))",
            [[r.container_id for r in readings]],
        )
    else:
        conn.execute("DELETE FROM container_readings")
    if not readings:
        return
    conn.execute(
        "INSERT INTO container_readings SELECT unnest($1::VARCHAR[]), unnest($2::VARCHAR[]),"
        " unnest($3::VARCHAR[]), unnest($4::VARCHAR[]), unnest($5::TIMESTAMP[]),"
        " unnest($6::BIGINT[]), unnest($7::BIGINT[]), unnest($8::BIGINT[])",
        [
            [r.container_id for r in readings],
            [r.tenant for r in readings],
            [r.deployment for r in readings],
            [r.started_at for r in readings],
            [r.read_at for r in readings],
            [r.counters.cpu_ns for r in readings],
            [r.counters.rx_bytes for r in readings],
            [r.counters.tx_bytes for r in readings],
        ],
    )


def _save_offsets(
    conn: duckdb.DuckDBPyConnection, offsets: Sequence[LogOffset], now: datetime
) -> None:
    for off in offsets:
        conn.execute("DELETE FROM proxy_log_offsets WHERE path = ?", [off.path])
    if offsets:
        conn.execute(
            "INSERT INTO proxy_log_offsets SELECT unnest($1::VARCHAR[]), unnest($2::BIGINT[]),"
            " unnest($3::BIGINT[]), $4::TIMESTAMP",
            [
                [o.path for o in offsets],
                [o.inode for o in offsets],
                [o.offset for o in offsets],
                now,
            ],
        )


def _add_log_bytes(conn: duckdb.DuckDBPyConnection, shares: dict[tuple[str, str], int]) -> None:
    for (tenant, deployment), extra in shares.items():
        if extra <= 0:
            continue
        row = conn.execute(
            "SELECT bytes FROM access_log_bytes WHERE tenant = ? AND deployment = ?",
            [tenant, deployment],
        ).fetchone()
        conn.execute(
            "DELETE FROM access_log_bytes WHERE tenant = ? AND deployment = ?",
            [tenant, deployment],
        )
        conn.execute(
            "INSERT INTO access_log_bytes VALUES (?, ?, ?)",
            [tenant, deployment, (int(row[0]) if row else 0) + extra],
        )


def metrics_cycle(
    store_path: Path,
    reader: Reader,
    spec: Spec | None,
    access_logs: Sequence[Path] = (),
    *,
    now: datetime | None = None,
) -> MetricsResult:
    """Read, compute and write one sample per deployment; returns what happened."""
    stamp = now or datetime.now(UTC).replace(tzinfo=None)
    readings = reader.read()
    pools = pool_stats(spec) if spec is not None else {}
    result = MetricsResult(containers=len(readings), unreached=reader.unreached)
    for r in readings:
        if r.node:
            result.nodes[r.node] = result.nodes.get(r.node, 0) + 1
    hosts = host_map(spec)
    web_like = {
        (tid, did)
        for tid, t in (spec.tenants.items() if spec else [])
        for did, d in t.deployments.items()
        if not isinstance(d, DatabaseDeployment)
    }
    with connect(store_path) as conn, transaction(conn):
        previous = _previous(conn)
        offsets = _offsets(conn)
        agg: dict[tuple[str, str], _Agg] = {}
        for r in readings:
            use: Usage = usage_between(previous.get(r.container_id), r)
            a = agg.setdefault((r.tenant, r.deployment), _Agg())
            if use.cpu_percent is not None:
                a.cpu = (a.cpu or 0.0) + use.cpu_percent
            a.memory += use.memory_bytes
            a.rx += use.rx_bytes
            a.tx += use.tx_bytes
            a.containers += 1
        new_offsets: list[LogOffset] = []
        logs_read = False
        log_shares: dict[tuple[str, str], int] = {}
        for path in access_logs:
            try:
                got = read_new(Path(path), offsets.get(str(path)))
            except OSError as exc:
                result.log_errors.append(f"{path}: {exc.strerror or exc}")
                continue
            logs_read = logs_read or got.found
            result.log_lines += got.lines
            result.bad_log_lines += got.bad_lines
            if got.offset is not None:
                new_offsets.append(got.offset)
            for host, stats in got.hosts.items():
                key = hosts.get(host)
                if key is None:
                    result.unknown_hosts.append(host)
                    continue
                a = agg.setdefault(key, _Agg())
                if a.proxy is None:
                    a.proxy = HostStats()
                a.proxy.add(stats)
                log_shares[key] = log_shares.get(key, 0) + stats.log_bytes
        if logs_read:
            for key in web_like:
                agg.setdefault(key, _Agg())
        for key in pools:
            agg.setdefault(key, _Agg())
        samples = [_sample(key, a, stamp, logs_read) for key, a in sorted(agg.items())]
        samples = [with_pool(s, pools.get((s.tenant, s.deployment))) for s in samples]
        result.samples = write_metrics(conn, samples)
        _save_readings(conn, readings, partial=bool(result.unreached))
        _save_offsets(conn, new_offsets, stamp)
        _add_log_bytes(conn, log_shares)
    result.unknown_hosts = sorted(set(result.unknown_hosts))
    return result


def _sample(key: tuple[str, str], a: _Agg, stamp: datetime, logs_read: bool) -> MetricSample:
    proxy = a.proxy or HostStats()
    has_containers = a.containers > 0
    requests = proxy.requests if logs_read else None
    return MetricSample(
        tenant=key[0],
        deployment=key[1],
        timestamp=stamp,
        cpu_usage=round(a.cpu, 3) if a.cpu is not None else None,
        memory_usage=a.memory if has_containers else None,
        # A container's own counters see every byte it moves; a static site has only the edge.
        bandwidth_in=a.rx if has_containers else proxy.bytes_in,
        bandwidth_out=a.tx if has_containers else proxy.bytes_out,
        requests_count=requests,
        response_time_avg=(
            round(proxy.duration_s / proxy.requests * 1000, 3) if proxy.requests else None
        ),
        error_count=proxy.errors if logs_read else None,
    )
