"""The plan catalog: the product document's four default plans, overridable from the file."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hosting.spec.models import Limits, Plan

DEFAULT_PLANS: dict[str, Plan] = {
    "free": Plan(
        name="free",
        price_monthly=Decimal("0.00"),
        price_yearly=Decimal("0.00"),
        storage_gb=1,
        bandwidth_gb=10,
        databases=1,
        apis=3,
        websites=3,
        custom_domain=False,
        ssl_certificate=False,
        backup_retention_days=1,
        limits=Limits(cpus=0.5, memory_mb=512, disk_io_mbps=50, network_mbps=10),
    ),
    "starter": Plan(
        name="starter",
        price_monthly=Decimal("9.99"),
        price_yearly=Decimal("99.90"),
        storage_gb=10,
        bandwidth_gb=100,
        databases=3,
        apis=10,
        websites=10,
        custom_domain=True,
        ssl_certificate=True,
        backup_retention_days=7,
        limits=Limits(cpus=1, memory_mb=1024, disk_io_mbps=100, network_mbps=100),
    ),
    "pro": Plan(
        name="pro",
        price_monthly=Decimal("29.99"),
        price_yearly=Decimal("299.90"),
        storage_gb=50,
        bandwidth_gb=500,
        databases=10,
        apis=50,
        websites=50,
        custom_domain=True,
        ssl_certificate=True,
        backup_retention_days=14,
        limits=Limits(cpus=2, memory_mb=4096, disk_io_mbps=200, network_mbps=500),
        database_replicas=2,
    ),
    "enterprise": Plan(
        name="enterprise",
        price_monthly=Decimal("99.99"),
        price_yearly=Decimal("999.90"),
        storage_gb=200,
        bandwidth_gb=2000,
        databases=999,
        apis=999,
        websites=999,
        custom_domain=True,
        ssl_certificate=True,
        backup_retention_days=30,
        limits=None,  # custom: each tenant on it brings its own
        database_replicas=5,
    ),
}

PLAN_FIELDS = tuple(f for f in Plan.model_fields if f != "name")
REQUIRED_FOR_NEW_PLAN = tuple(f for f in PLAN_FIELDS if f not in ("features", "database_replicas"))


def merge_plan(name: str, given: dict[str, Any]) -> dict[str, Any]:
    """A known plan overridden by the fields given; a new plan is exactly what is given."""
    base = DEFAULT_PLANS.get(name)
    if base is None:
        return {"name": name, **given}
    merged = base.model_dump()
    merged.update(given)
    merged["name"] = name
    return merged
