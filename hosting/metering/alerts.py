"""Storage and bandwidth against the plan: the >= 90 % warning, the >= 100 % refusal of new
deployments, and bandwidth overage, recorded as alerts when they first appear. The health
job records its own kinds here too: `edge_down` and `restart_loop`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

import duckdb

from hosting.billing.periods import period_containing
from hosting.errors import NotFoundError
from hosting.spec.models import Spec
from hosting.store import connect, transaction

GB = 2**30
WARNING_PERCENT = 90.0
OK, WARNING, FULL, OVERAGE = "ok", "warning", "full", "overage"
CRITICAL = "critical"
EDGE_DOWN, RESTART_LOOP = "edge_down", "restart_loop"  # the health job's kinds

# The latest measurement of each (deployment, storage type) holds until the next one.
_LATEST = """
SELECT deployment, storage_type, size_bytes, file_count, last_calculated FROM (
    SELECT *, row_number() OVER (PARTITION BY deployment, storage_type
                                 ORDER BY last_calculated DESC, event_id DESC) AS n
    FROM deployment_storage WHERE tenant = ?
) WHERE n = 1 ORDER BY deployment, storage_type
"""


def level_for(percent: float) -> str:
    return FULL if percent >= 100 else WARNING if percent >= WARNING_PERCENT else OK


LatestRow = tuple[str, str, int, int | None, datetime]


def latest_storage(conn: duckdb.DuckDBPyConnection, tenant: str) -> list[LatestRow]:
    """(deployment, storage_type, size_bytes, file_count, last_calculated) rows."""
    return [
        (str(r[0]), str(r[1]), int(r[2]), None if r[3] is None else int(r[3]), r[4])
        for r in conn.execute(_LATEST, [tenant]).fetchall()
    ]


def _used_bytes(store_path: Path, tenant_id: str) -> int:
    if not store_path.exists():
        return 0
    with connect(store_path, read_only=True) as conn:
        try:
            rows = latest_storage(conn, tenant_id)
        except duckdb.CatalogException:
            return 0  # a store that was never migrated has no measurements
    return sum(r[2] for r in rows)


def storage_status(store_path: Path, spec: Spec, tenant_id: str) -> tuple[int, int, float, str]:
    """(used_bytes, limit_bytes, percent, level) with level ok | warning (>= 90%) | full."""
    tenant = spec.tenants.get(tenant_id)
    if tenant is None:
        raise NotFoundError(f"unknown tenant `{tenant_id}`")
    limit = spec.plan_of(tenant).storage_gb * GB
    used = _used_bytes(store_path, tenant_id)
    percent = (used / limit * 100) if limit else (100.0 if used else 0.0)
    return used, limit, round(percent, 2), level_for(percent)


def storage_refusal(store_path: Path, spec: Spec, tenant_id: str) -> str | None:
    """Why a new deployment is refused for storage, or None (the product: >= 100% refuses)."""
    _, limit, percent, level = storage_status(store_path, spec, tenant_id)
    if level != FULL:
        return None
    return f"Storage limit exceeded: {percent:.1f}% of {limit / GB:g} GB used"


@dataclass(frozen=True)
class Alert:
    tenant: str
    kind: str  # storage | bandwidth | edge_down | restart_loop
    level: str  # warning | full | overage | critical
    message: str
    used: int  # bytes; restart_loop: restarts in the window; edge_down: failed probes
    limit: int  # bytes; restart_loop: the cap; edge_down: the failures before a restart


def bandwidth_used(conn: duckdb.DuckDBPyConnection, tenant: str, start: date, end: date) -> int:
    row = conn.execute(
        "SELECT coalesce(sum(bandwidth_out), 0) FROM deployment_metrics"
        ' WHERE tenant = ? AND "timestamp" >= ? AND "timestamp" < ?',
        [tenant, datetime.combine(start, time()), datetime.combine(end, time())],
    ).fetchone()
    return int(row[0]) if row else 0


def current_alerts(
    conn: duckdb.DuckDBPyConnection, spec: Spec, day: date, tenants: list[str] | None = None
) -> list[Alert]:
    """Each tenant's storage level and bandwidth state now (level `ok` included)."""
    out: list[Alert] = []
    for tid in tenants if tenants is not None else list(spec.tenants):
        tenant = spec.tenants[tid]
        plan = spec.plan_of(tenant)
        used = sum(r[2] for r in latest_storage(conn, tid))
        limit = plan.storage_gb * GB
        percent = used / limit * 100 if limit else (100.0 if used else 0.0)
        level = level_for(percent)
        message = _storage_message(level, percent, plan.storage_gb)
        out.append(Alert(tid, "storage", level, message, used, limit))
        if day >= tenant.started:
            start, end = period_containing(tenant.started, day)
            sent = bandwidth_used(conn, tid, start, end)
            included = plan.bandwidth_gb * GB
            over = OVERAGE if sent > included else OK
            message = (
                f"bandwidth {sent / GB:.2f} GB exceeds the included {plan.bandwidth_gb} GB"
                f" this period ({start} to {end}); overage is billed at $0.05/GB"
                if over == OVERAGE
                else "bandwidth within the plan"
            )
            out.append(Alert(tid, "bandwidth", over, message, sent, included))
    return out


def standing_alerts(
    store_path: Path, spec: Spec, tenant: str, day: date | None = None
) -> list[Alert]:
    """What `status` and `usage` show: the tenant's alerts that hold now (not `ok`), and a
    restart_loop the health job raised that still stands."""
    if not store_path.exists():
        return []
    with connect(store_path, read_only=True) as conn:
        try:
            alerts = current_alerts(conn, spec, day or datetime.now(UTC).date(), [tenant])
            loops = [a for a in open_alerts(conn, tenant) if a.kind == RESTART_LOOP]
        except duckdb.CatalogException:
            return []  # never migrated: nothing measured
    return [a for a in alerts if a.level != OK] + loops


def check_alerts(store_path: Path, spec: Spec, *, today: date | None = None) -> list[Alert]:
    """Record a new alert for each tenant whose storage level or bandwidth overage changed
    since its last alert of that kind; returns the ones recorded now."""
    day = today or datetime.now(UTC).date()
    with connect(store_path) as conn, transaction(conn):
        current = current_alerts(conn, spec, day)
        recorded = []
        stamp = datetime.now(UTC).replace(tzinfo=None)
        for a in current:
            last = conn.execute(
                "SELECT level FROM alert_state WHERE tenant = ? AND kind = ?",
                [a.tenant, a.kind],
            ).fetchone()
            if (last[0] if last else OK) == a.level:
                continue
            conn.execute(
                "DELETE FROM alert_state WHERE tenant = ? AND kind = ?", [a.tenant, a.kind]
            )
            conn.execute(
                "INSERT INTO alert_state VALUES (?, ?, ?, ?)",
                [a.tenant, a.kind, a.level, stamp],
            )
            if a.level != OK:
                conn.execute(
                    "INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        str(uuid.uuid4()),
                        a.tenant,
                        a.kind,
                        a.level,
                        a.message,
                        a.used,
                        a.limit,
                        stamp,
                    ],
                )
                recorded.append(a)
    return recorded


def record_alert(
    conn: duckdb.DuckDBPyConnection, alert: Alert, stamp: datetime, *, standing: bool = True
) -> None:
    """Record an alert and, when `standing`, the level it holds for its tenant and kind
    (what `open_alerts` joins on) until `clear_alert`."""
    conn.execute(
        "INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [str(uuid.uuid4()), alert.tenant, alert.kind, alert.level, alert.message,
         alert.used, alert.limit, stamp],
    )  # fmt: skip
    if standing:
        _set_level(conn, alert.tenant, alert.kind, alert.level, stamp)


def clear_alert(conn: duckdb.DuckDBPyConnection, tenant: str, kind: str, stamp: datetime) -> None:
    _set_level(conn, tenant, kind, OK, stamp)


def _set_level(
    conn: duckdb.DuckDBPyConnection, tenant: str, kind: str, level: str, stamp: datetime
) -> None:
    conn.execute("DELETE FROM alert_state WHERE tenant = ? AND kind = ?", [tenant, kind])
    conn.execute("INSERT INTO alert_state VALUES (?, ?, ?, ?)", [tenant, kind, level, stamp])


def _storage_message(level: str, percent: float, included_gb: int) -> str:
    if level == FULL:
        return f"storage {percent:.1f}% of {included_gb} GB: new deployments are refused"
    if level == WARNING:
        return f"storage {percent:.1f}% of {included_gb} GB: over 90%"
    return "storage within the plan"


def open_alerts(conn: duckdb.DuckDBPyConnection, tenant: str | None = None) -> list[Alert]:
    """The alerts still standing: the latest per tenant and kind whose level holds now."""
    rows = conn.execute(
        'SELECT a.tenant, a.kind, a.level, a.message, a.used, a."limit" FROM ('
        " SELECT *, row_number() OVER (PARTITION BY tenant, kind ORDER BY created_at DESC) n"
        " FROM alerts WHERE ? IS NULL OR tenant = ?) a"
        " JOIN alert_state s ON s.tenant = a.tenant AND s.kind = a.kind AND s.level = a.level"
        " WHERE a.n = 1 ORDER BY a.tenant, a.kind",
        [tenant, tenant],
    ).fetchall()
    return [Alert(r[0], r[1], r[2], r[3], int(r[4]), int(r[5])) for r in rows]
