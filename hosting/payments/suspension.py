"""Suspension: the state the dunning schedule puts a tenant in, and payment takes it out of.

A tenant is suspended while it has an open suspension (no `lifted_on`). Dunning records a
`suspend` step on every unpaid invoice that passed `platform.billing.suspend_after_days`;
the suspension is lifted as soon as no unpaid invoice of the tenant carries one (the webhook
does this when the payment arrives; dunning too, for an invoice marked paid by hand).

What a suspension does to running deployments is `apply`'s job: the stack reads
`suspended_tenants` and stops the tenant's web and API containers, and the edge answers its
hosts with 402 (hosting.edge.caddy); databases and volumes are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb

from hosting import store


@dataclass(frozen=True)
class Suspension:
    tenant: str
    suspended_on: date
    invoice_number: str
    lifted_on: date | None
    lifted_by: str | None


def open_suspension(conn: duckdb.DuckDBPyConnection, tenant: str) -> Suspension | None:
    row = conn.execute(
        "SELECT tenant, suspended_on, invoice_number, lifted_on, lifted_by "
        "FROM tenant_suspensions WHERE tenant = $1 AND lifted_on IS NULL",
        [tenant],
    ).fetchone()
    return Suspension(*row) if row else None


def history(conn: duckdb.DuckDBPyConnection, tenant: str) -> list[Suspension]:
    rows = conn.execute(
        "SELECT tenant, suspended_on, invoice_number, lifted_on, lifted_by "
        "FROM tenant_suspensions WHERE tenant = $1 ORDER BY suspended_on",
        [tenant],
    ).fetchall()
    return [Suspension(*r) for r in rows]


def suspend(
    conn: duckdb.DuckDBPyConnection, tenant: str, number: str, day: date, now: datetime
) -> bool:
    """Open a suspension unless one is open; True when this call opened it."""
    if open_suspension(conn, tenant) is not None:
        return False
    conn.execute(
        "INSERT INTO tenant_suspensions VALUES ($1, $2, $3, NULL, NULL, $4)",
        [tenant, day, number, now],
    )
    return True


def lift_if_settled(conn: duckdb.DuckDBPyConnection, tenant: str, day: date, by: str) -> bool:
    """Lift the open suspension when no unpaid invoice of the tenant passed the limit."""
    if open_suspension(conn, tenant) is None:
        return False
    row = conn.execute(
        "SELECT count(*) FROM dunning_steps s JOIN billing_invoices i "
        "ON i.invoice_number = s.invoice_number WHERE s.tenant = $1 AND s.step = 'suspend' "
        "AND i.status IN ('pending', 'failed')",
        [tenant],
    ).fetchone()
    if row and row[0]:
        return False
    conn.execute(
        "UPDATE tenant_suspensions SET lifted_on = $1, lifted_by = $2 "
        "WHERE tenant = $3 AND lifted_on IS NULL",
        [day, by, tenant],
    )
    return True


def suspended_tenants(store_path: Path) -> frozenset[str]:
    """Tenants suspended now; none when the store does not exist yet."""
    if not Path(store_path).exists():
        return frozenset()
    with store.connect(store_path, read_only=True) as conn:  # plan may run read-only
        rows = conn.execute(
            "SELECT DISTINCT tenant FROM tenant_suspensions WHERE lifted_on IS NULL"
        ).fetchall()
    return frozenset(str(r[0]) for r in rows)


@dataclass(frozen=True)
class Step:
    invoice_number: str
    step: str
    day: int
    on_date: date
    outcome: str


@dataclass(frozen=True)
class Account:
    """A tenant's payment standing, for `subscription TENANT`, `status` and reports."""

    tenant: str
    suspended: Suspension | None
    suspensions: list[Suspension]
    dunning: list[Step]


def account(store_path: Path, tenant: str) -> Account:
    if not Path(store_path).exists():
        return Account(tenant, None, [], [])
    with store.connect(store_path, read_only=True) as conn:
        steps = [
            Step(str(n), str(s), int(d), o, str(out))
            for n, s, d, o, out in conn.execute(
                "SELECT invoice_number, step, day, on_date, outcome FROM dunning_steps "
                "WHERE tenant = $1 ORDER BY on_date, invoice_number, day, step",
                [tenant],
            ).fetchall()
        ]
        return Account(tenant, open_suspension(conn, tenant), history(conn, tenant), steps)
