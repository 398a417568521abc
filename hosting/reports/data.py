"""Reads for the reports: plain SQL over the usage tables (0001_usage.sql) and, when the
metering migration is present, its health-check and alert tables.

Each function takes an open connection and returns plain tuples/dicts; no view logic here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import duckdb

from hosting.billing import periods

BUCKETS = (300, 900, 3600, 3 * 3600, 6 * 3600, 86400)
MAX_BUCKETS = 200


def billing_period(started: date, as_of: date) -> tuple[date, date]:
    """The monthly period [start, end) that contains `as_of`, from the tenant's anchor day
    (billing's own rule); the first period when `as_of` is before the start."""
    return periods.period_containing(started, max(as_of, started))


def bucket_seconds(start: datetime, end: datetime) -> int:
    span = (end - start).total_seconds()
    for size in BUCKETS:
        if span / size <= MAX_BUCKETS:
            return size
    return BUCKETS[-1]


@dataclass(frozen=True)
class Bucket:
    time: datetime  # start of the bucket
    cpu: float | None
    memory: float | None
    bandwidth_in: int
    bandwidth_out: int
    requests: int
    errors: int
    response_ms: float | None


def table_columns(conn: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]
    ).fetchall()
    return {r[0] for r in rows}


def metric_buckets(
    conn: duckdb.DuckDBPyConnection,
    tenant: str,
    start: datetime,
    end: datetime,
    size: int,
) -> dict[str, list[Bucket]]:
    """Samples per deployment summed (counters) or averaged (gauges) into fixed buckets."""
    rows = conn.execute(
        """
        SELECT deployment,
               CAST(floor((epoch("timestamp") - epoch(CAST(? AS TIMESTAMP))) / ?) AS BIGINT) AS b,
               avg(cpu_usage), avg(memory_usage),
               coalesce(sum(bandwidth_in), 0), coalesce(sum(bandwidth_out), 0),
               coalesce(sum(requests_count), 0), coalesce(sum(error_count), 0),
               avg(response_time_avg)
        FROM deployment_metrics
        WHERE tenant = ? AND "timestamp" >= ? AND "timestamp" < ?
        GROUP BY 1, 2 ORDER BY 1, 2
        """,
        [start, size, tenant, start, end],
    ).fetchall()
    out: dict[str, list[Bucket]] = {}
    for dep, b, cpu, mem, bin_, bout, req, err, rt in rows:
        out.setdefault(dep, []).append(
            Bucket(
                start + timedelta(seconds=int(b) * size),
                None if cpu is None else float(cpu),
                None if mem is None else float(mem),
                int(bin_),
                int(bout),
                int(req),
                int(err),
                None if rt is None else float(rt),
            )
        )
    return out


def metric_totals(
    conn: duckdb.DuckDBPyConnection, start: datetime, end: datetime, tenant: str | None = None
) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (tenant, deployment): counters summed, gauges averaged, sample count."""
    where = "AND tenant = ?" if tenant is not None else ""
    params: list[Any] = [start, end] + ([tenant] if tenant is not None else [])
    rows = conn.execute(
        f"""
        SELECT tenant, deployment, count(*), avg(cpu_usage), max(memory_usage),
               coalesce(sum(bandwidth_in), 0), coalesce(sum(bandwidth_out), 0),
               coalesce(sum(requests_count), 0), coalesce(sum(error_count), 0),
               -- CPU-hours: each sample's percent holds for its interval; approximate the
               -- interval by the period's sample spacing per deployment
               coalesce(sum(cpu_usage), 0), min("timestamp"), max("timestamp")
        FROM deployment_metrics
        WHERE "timestamp" >= ? AND "timestamp" < ? {where}
        GROUP BY 1, 2
        """,
        params,
    ).fetchall()
    out = {}
    for t, d, n, cpu, mem, bin_, bout, req, err, cpu_sum, first, last in rows:
        spacing = (last - first).total_seconds() / (n - 1) if n > 1 else 60.0
        out[(t, d)] = {
            "samples": int(n),
            "avg_cpu": None if cpu is None else float(cpu),
            "peak_memory": None if mem is None else int(mem),
            "bandwidth_in": int(bin_),
            "bandwidth_out": int(bout),
            "requests": int(req),
            "errors": int(err),
            "cpu_hours": float(cpu_sum) / 100.0 * spacing / 3600.0,
        }
    return out


def deployment_rows(
    conn: duckdb.DuckDBPyConnection, tenant: str | None = None
) -> dict[tuple[str, str], dict[str, Any]]:
    where = "WHERE tenant = ?" if tenant is not None else ""
    rows = conn.execute(
        f"SELECT tenant, deployment, deployment_type, status, health_status FROM deployments "
        f"{where}",
        [tenant] if tenant is not None else [],
    ).fetchall()
    return {(t, d): {"type": ty, "status": st, "health": h} for t, d, ty, st, h in rows}


def storage_events(
    conn: duckdb.DuckDBPyConnection, end: datetime, tenant: str | None = None
) -> list[tuple[datetime, str, str, str, int]]:
    """(time, tenant, deployment, storage_type, bytes) up to `end`, oldest first."""
    where = "AND tenant = ?" if tenant is not None else ""
    params: list[Any] = [end] + ([tenant] if tenant is not None else [])
    rows = conn.execute(
        f"""
        SELECT last_calculated, tenant, deployment, storage_type, size_bytes
        FROM deployment_storage WHERE last_calculated < ? {where}
        ORDER BY last_calculated, tenant, deployment, storage_type
        """,
        params,
    ).fetchall()
    return [(r[0], r[1], r[2], r[3], int(r[4])) for r in rows]


def health_checks(
    conn: duckdb.DuckDBPyConnection, tenant: str, start: datetime, end: datetime
) -> list[tuple[str, datetime, str]] | None:
    """(deployment, time, status) from the metering helper's table; None when it is absent."""
    cols = table_columns(conn, "health_checks")
    if not cols:
        return None
    time_col = next((c for c in ("checked_at", "timestamp", "time") if c in cols), None)
    if time_col is None or "status" not in cols or "deployment" not in cols:
        return None
    rows = conn.execute(
        f'SELECT deployment, "{time_col}", status FROM health_checks '
        f'WHERE tenant = ? AND "{time_col}" >= ? AND "{time_col}" < ? ORDER BY 1, 2',
        [tenant, start, end],
    ).fetchall()
    return [(r[0], r[1], str(r[2])) for r in rows]


def stored_alerts(
    conn: duckdb.DuckDBPyConnection, tenant: str, start: datetime, end: datetime
) -> list[dict[str, Any]] | None:
    """Alerts the metering agent recorded; None when its table is absent."""
    cols = table_columns(conn, "alerts")
    if not cols or "tenant" not in cols:
        return None
    time_col = next(
        (c for c in ("created_at", "raised_at", "timestamp", "time") if c in cols), None
    )
    if time_col is None:
        return None
    rows = conn.execute(
        f'SELECT * FROM alerts WHERE tenant = ? AND "{time_col}" >= ? AND "{time_col}" < ? '
        f'ORDER BY "{time_col}"',
        [tenant, start, end],
    )
    names = [d[0] for d in rows.description]
    out = []
    for row in rows.fetchall():
        rec = dict(zip(names, row, strict=True))
        rec["_time"] = rec[time_col]
        out.append(rec)
    return out
