"""Reads for the CLI and other areas: metrics history (getMetrics), storage per deployment
and type with the tenant's total and plan limit (getStorageInfo, getUserStorageTotal)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from hosting.metering.alerts import GB, OK, Alert, current_alerts, latest_storage, level_for
from hosting.metering.samples import METRICS, POOL_METRICS
from hosting.spec.models import Spec
from hosting.store import connect, rows_as_dicts

_MERGE = {
    "cpu_usage": "avg(cpu_usage) AS cpu_usage",
    "memory_usage": "CAST(round(avg(memory_usage)) AS BIGINT) AS memory_usage",
    "bandwidth_in": "CAST(sum(bandwidth_in) AS BIGINT) AS bandwidth_in",
    "bandwidth_out": "CAST(sum(bandwidth_out) AS BIGINT) AS bandwidth_out",
    "requests_count": "CAST(sum(requests_count) AS BIGINT) AS requests_count",
    "response_time_avg": "avg(response_time_avg) AS response_time_avg",
    "error_count": "CAST(sum(error_count) AS BIGINT) AS error_count",
    "pool_clients": "CAST(round(avg(pool_clients)) AS BIGINT) AS pool_clients",
    "pool_waiting": "CAST(round(avg(pool_waiting)) AS BIGINT) AS pool_waiting",
    "pool_servers": "CAST(round(avg(pool_servers)) AS BIGINT) AS pool_servers",
}


def metrics_history(
    store_path: Path, tenant: str, deployment: str, hours: float, *, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Samples of the last `hours`, one per time, oldest first, with the product document's
    field names. Samples of one time are merged (an imported event carries one metric):
    amounts in the interval add up, levels (CPU, memory, response time) are averaged."""
    end = now or datetime.now(UTC).replace(tzinfo=None)
    start = end - timedelta(hours=hours)
    with connect(store_path, read_only=True) as conn:
        try:
            cur = conn.execute(
                'SELECT "timestamp", ' + ", ".join(_MERGE[m] for m in METRICS) + " FROM"
                " deployment_metrics WHERE tenant = ? AND deployment = ?"
                ' AND "timestamp" >= ? AND "timestamp" <= ?'
                ' GROUP BY "timestamp" ORDER BY "timestamp"',
                [tenant, deployment, start, end],
            )
        except duckdb.CatalogException:
            return []
        rows = rows_as_dicts(cur)
    # The pooler's counts only where there is a pooler: other deployments keep the product
    # document's fields alone.
    for name in POOL_METRICS:
        if all(r[name] is None for r in rows):
            for r in rows:
                del r[name]
    return rows


@dataclass
class StorageRow:
    deployment: str
    storage_type: str
    size_bytes: int
    file_count: int | None
    last_calculated: datetime


@dataclass
class TenantStorage:
    tenant: str
    plan: str
    total_bytes: int
    limit_bytes: int
    percent: float
    level: str
    storage: list[StorageRow] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)


def storage_info(
    store_path: Path, spec: Spec, tenant: str | None = None, deployment: str | None = None
) -> list[TenantStorage]:
    tenants = [tenant] if tenant else list(spec.tenants)
    today = datetime.now(UTC).date()
    out = []
    with connect(store_path) as conn:
        for tid in tenants:
            t = spec.tenants[tid]
            plan = spec.plan_of(t)
            rows = [StorageRow(*r) for r in latest_storage(conn, tid)]
            total = sum(r.size_bytes for r in rows)
            limit = plan.storage_gb * GB
            percent = total / limit * 100 if limit else (100.0 if total else 0.0)
            if deployment:
                rows = [r for r in rows if r.deployment == deployment]
            out.append(
                TenantStorage(
                    tid,
                    plan.name,
                    total,
                    limit,
                    round(percent, 2),
                    level_for(percent),
                    rows,
                    # The alerts that hold now, as `status` and `usage` compute them, not
                    # the last ones the agent recorded (an import may have changed them).
                    [a for a in current_alerts(conn, spec, today, [tid]) if a.level != OK],
                )
            )
    return out


@dataclass(frozen=True)
class HealthView:
    tenant: str
    deployment: str
    status: str  # healthy | unhealthy | unknown
    detail: str | None
    checked_at: datetime


def latest_health(store_path: Path, tenant: str | None = None) -> list[HealthView]:
    """The last probe of each deployment (for `status`); empty before the first one."""
    with connect(store_path, read_only=True) as conn:
        try:
            found = conn.execute(
                "SELECT tenant, deployment, status, detail, checked_at FROM ("
                " SELECT *, row_number() OVER (PARTITION BY tenant, deployment"
                " ORDER BY checked_at DESC) AS n FROM health_checks"
                " WHERE ? IS NULL OR tenant = ?) WHERE n = 1 ORDER BY tenant, deployment",
                [tenant, tenant],
            ).fetchall()
        except duckdb.CatalogException:
            return []
    return [HealthView(r[0], r[1], r[2], r[3], r[4]) for r in found]
