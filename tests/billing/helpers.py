"""Shared helpers for the billing tests: a spec from tenant fields, usage rows by plain INSERT."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from hosting import store
from hosting.spec import Spec, loads

GIB = 1073741824  # 2^30, written out: the tests do not take it from the code under test

PLATFORM = {"name": "demo", "domain": "apps.localhost", "public_ipv4": "127.0.0.1"}
ENTERPRISE_LIMITS = {"cpus": 4, "memory_mb": 8192, "disk_io_mbps": 400, "network_mbps": 1000}


def tenant(plan: str, started: date, cycle: str = "monthly", **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": "Tenant",
        "email": "billing@tenant.test",
        "plan": plan,
        "billing_cycle": cycle,
        "started": started.isoformat(),
        **extra,
    }
    if plan == "enterprise":
        out["limits"] = ENTERPRISE_LIMITS
    return out


def make_spec(
    tenants: dict[str, dict[str, Any]],
    plans: dict[str, Any] | None = None,
    platform_extra: dict[str, Any] | None = None,
) -> Spec:
    platform = {**PLATFORM, **(platform_extra or {})}
    doc: dict[str, Any] = {"version": 1, "platform": platform, "tenants": tenants}
    if plans:
        doc["plans"] = plans
    return loads(yaml.safe_dump(doc, sort_keys=False))


def write_spec(path: Path, tenants: dict[str, dict[str, Any]]) -> Path:
    doc = {"version": 1, "platform": PLATFORM, "tenants": tenants}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def add_bandwidth(
    store_path: Path, tenant_id: str, rows: list[tuple[datetime, int | None]], dep: str = "app"
) -> None:
    """deployment_metrics rows with only bandwidth_out set (None: an event of another metric)."""
    with store.connect(store_path) as conn:
        base = conn.execute("SELECT count(*) FROM deployment_metrics").fetchone()
        n = int(base[0]) if base else 0
        for i, (ts, value) in enumerate(rows):
            conn.execute(
                'INSERT INTO deployment_metrics (event_id, tenant, deployment, "timestamp", '
                "bandwidth_out, cpu_usage) VALUES (?, ?, ?, ?, ?, ?)",
                [f"bw-{n + i}", tenant_id, dep, ts, value, None if value is not None else 12.5],
            )


def add_storage(
    store_path: Path, tenant_id: str, rows: list[tuple[datetime, str, str, int]]
) -> None:
    """deployment_storage rows: (last_calculated, deployment, storage_type, size_bytes)."""
    with store.connect(store_path) as conn:
        base = conn.execute("SELECT count(*) FROM deployment_storage").fetchone()
        n = int(base[0]) if base else 0
        for i, (ts, dep, kind, size) in enumerate(rows):
            conn.execute(
                "INSERT INTO deployment_storage (event_id, tenant, deployment, storage_type, "
                "size_bytes, last_calculated) VALUES (?, ?, ?, ?, ?, ?)",
                [f"st-{n + i}", tenant_id, dep, kind, size, ts],
            )
