"""Subscriptions and their history in the store; `subscription sync` (SPEC §3).

The file says what each tenant should be on now; the store remembers what they were on and
since when. Sync compares the two: a new tenant starts on its `started` day; a changed plan,
cycle or plan terms takes effect on the sync date; a tenant gone from the file ends on it.
History is append-only and never rewritten behind an invoice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from hosting import dates, store
from hosting.billing.schedule import HistoryRow, Terms
from hosting.dates import as_of_day
from hosting.errors import BillingError, NotFoundError
from hosting.spec.models import Spec, Tenant


@dataclass(frozen=True)
class Change:
    """One history row that sync recorded (or would record)."""

    tenant: str
    event: str  # start | change | end
    effective: date
    subscription_id: str
    plan: str | None
    billing_cycle: str | None
    old_plan: str | None = None
    old_billing_cycle: str | None = None


@dataclass(frozen=True)
class SyncResult:
    as_of: date
    changes: list[Change]


def today() -> date:
    return dates.today()


def utcnow() -> datetime:
    """Naive UTC, as the store keeps timestamps."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def check_as_of(as_of: date | None) -> date:
    """The as-of date, defaulting to today; a future date is refused (no data exists yet)."""
    return as_of_day(as_of)


def terms_of(spec: Spec, tenant: Tenant) -> Terms:
    plan = spec.plan_of(tenant)
    return Terms(
        plan=plan.name,
        cycle=tenant.billing_cycle,
        price_monthly=plan.price_monthly,
        price_yearly=plan.price_yearly,
        storage_gb=plan.storage_gb,
        bandwidth_gb=plan.bandwidth_gb,
    )


_HISTORY_COLUMNS = (
    "tenant, seq, subscription_id, effective, event, plan, billing_cycle, price_monthly, "
    "price_yearly, storage_gb, bandwidth_gb"
)


def load_history(
    conn: duckdb.DuckDBPyConnection, tenants: Iterable[str] | None = None
) -> dict[str, list[HistoryRow]]:
    """Every tenant's history rows in seq order (optionally only some tenants)."""
    sql = f"SELECT {_HISTORY_COLUMNS} FROM subscription_history"
    params: list[Any] = []
    if tenants is not None:
        sql += " WHERE list_contains($1, tenant)"
        params = [list(tenants)]
    out: dict[str, list[HistoryRow]] = {}
    for row in conn.execute(sql + " ORDER BY tenant, seq", params).fetchall():
        tenant, seq, sub, eff, event, plan, cycle, pm, py, sg, bg = row
        terms = None if plan is None else Terms(plan, cycle, pm, py, sg, bg)
        out.setdefault(tenant, []).append(HistoryRow(sub, tenant, seq, eff, event, terms))
    return out


def known_tenants(conn: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT DISTINCT tenant FROM subscriptions").fetchall()}


def _invoiced_until(conn: duckdb.DuckDBPyConnection) -> dict[str, date]:
    rows = conn.execute(
        "SELECT tenant, max(period_end)::DATE FROM billing_invoices GROUP BY tenant"
    ).fetchall()
    return {t: d for t, d in rows}


@dataclass
class _Pending:
    """Rows to insert, collected first so a refused sync writes nothing."""

    history: list[tuple[Any, ...]]
    subscriptions: list[tuple[Any, ...]]
    changes: list[Change]


def _row(
    tenant: str, seq: int, sub: str, effective: date, event: str, terms: Terms | None
) -> tuple[Any, ...]:
    if terms is None:
        return (tenant, seq, sub, effective, event, None, None, None, None, None, None)
    return (
        tenant,
        seq,
        sub,
        effective,
        event,
        terms.plan,
        terms.cycle,
        terms.price_monthly,
        terms.price_yearly,
        terms.storage_gb,
        terms.bandwidth_gb,
    )


def plan_sync(
    spec: Spec,
    history: dict[str, list[HistoryRow]],
    invoiced_until: dict[str, date],
    as_of: date | None,
    *,
    only_new: bool = False,
    only: set[str] | None = None,
) -> _Pending:
    """What sync would record; raises (having recorded nothing) when a change cannot be.

    `as_of=None` with `only_new=True` records new tenants only: their start does not depend
    on any date, so `invoice run` can do it safely.
    """
    pending = _Pending([], [], [])
    problems: list[str] = []
    now = utcnow()
    names = set(spec.tenants) | set(history)
    for tid in sorted(names if only is None else names & only):
        rows = history.get(tid, [])
        tenant = spec.tenants.get(tid)
        last = rows[-1] if rows else None
        seq = (last.seq + 1) if last else 1
        active = last is not None and last.event != "end"
        if tenant is not None and not active:
            if last is None:
                effective = tenant.started
            elif only_new or as_of is None:
                continue  # a tenant coming back restarts on the sync date: sync's decision
            else:
                effective = max(as_of, tenant.started, last.effective)
            terms = terms_of(spec, tenant)
            sub = str(uuid.uuid4())
            pending.subscriptions.append((sub, tid, tenant.name, tenant.email, effective, now))
            pending.history.append(_row(tid, seq, sub, effective, "start", terms))
            pending.changes.append(Change(tid, "start", effective, sub, terms.plan, terms.cycle))
            continue
        if only_new or as_of is None or last is None or not active:
            continue  # nothing to change, or an ended tenant still absent from the file
        current = _current_terms(rows)
        sub = last.subscription_id
        start = _start_of(rows, sub)
        if tenant is None:
            new_terms, event = None, "end"
        else:
            new_terms = terms_of(spec, tenant)
            if new_terms == current:
                continue
            event = "change"
        effective = max(as_of, start)
        if effective < last.effective:
            problems.append(
                f"{tid}: its history already has a change on {last.effective}; "
                f"a change on {effective} cannot go before it (use --as-of {last.effective} "
                "or later)"
            )
            continue
        billed = invoiced_until.get(tid)
        if billed is not None and effective < billed:
            problems.append(
                f"{tid}: the period up to {billed} is already invoiced; a change on "
                f"{effective} would rewrite it (use --as-of {billed} or later)"
            )
            continue
        pending.history.append(_row(tid, seq, sub, effective, event, new_terms))
        pending.changes.append(
            Change(
                tid,
                event,
                effective,
                sub,
                new_terms.plan if new_terms else None,
                new_terms.cycle if new_terms else None,
                current.plan if current else None,
                current.cycle if current else None,
            )
        )
    if problems:
        raise BillingError(
            "subscription sync refused, nothing recorded: " + "; ".join(problems),
            "history is append-only and never rewritten behind an invoice",
        )
    return pending


def _current_terms(rows: list[HistoryRow]) -> Terms | None:
    for row in reversed(rows):
        if row.terms is not None:
            return row.terms
    return None


def _start_of(rows: list[HistoryRow], sub: str) -> date:
    return min(r.effective for r in rows if r.subscription_id == sub)


def write(conn: duckdb.DuckDBPyConnection, pending: _Pending) -> None:
    """Insert the collected rows in two set-based statements (never row by row)."""
    if pending.subscriptions:
        cols = list(zip(*pending.subscriptions, strict=True))
        conn.execute(
            "INSERT INTO subscriptions SELECT unnest($1), unnest($2), unnest($3), unnest($4), "
            "unnest($5::DATE[]), unnest($6::TIMESTAMP[])",
            [list(c) for c in cols],
        )
    if pending.history:
        now = utcnow()
        cols = list(zip(*pending.history, strict=True))
        conn.execute(
            f"INSERT INTO subscription_history ({_HISTORY_COLUMNS}, recorded_at) SELECT "
            "unnest($1), unnest($2), unnest($3), unnest($4::DATE[]), unnest($5), "
            "unnest($6::VARCHAR[]), unnest($7::VARCHAR[]), unnest($8::DECIMAL(18,2)[]), "
            "unnest($9::DECIMAL(18,2)[]), unnest($10::INTEGER[]), unnest($11::INTEGER[]), $12",
            [*(list(c) for c in cols), now],
        )


def sync_conn(
    conn: duckdb.DuckDBPyConnection,
    spec: Spec,
    as_of: date | None,
    *,
    only_new: bool = False,
    only: set[str] | None = None,
) -> list[Change]:
    """Sync inside an open connection (the caller owns the transaction)."""
    history = load_history(conn)
    pending = plan_sync(spec, history, _invoiced_until(conn), as_of, only_new=only_new, only=only)
    write(conn, pending)
    return pending.changes


def sync(store_path: Path, spec: Spec, as_of: date | None = None) -> SyncResult:
    """`hosting subscription sync`, also called by `apply`: record the file's changes."""
    day = check_as_of(as_of)
    with store.connect(store_path) as conn, store.transaction(conn):
        changes = sync_conn(conn, spec, day)
    return SyncResult(day, changes)


def require_tenant(spec: Spec | None, conn: duckdb.DuckDBPyConnection, tenant: str) -> None:
    """Refuse a tenant neither in the file nor recorded; the hint lists both kinds (read from
    the store: callers hold only the asked tenant's history, which names no other tenant)."""
    if spec is not None and tenant in spec.tenants:
        return
    recorded = known_tenants(conn)
    if tenant in recorded:
        return
    known = sorted(set(spec.tenants if spec else ()) | recorded)
    raise NotFoundError(
        f"unknown tenant `{tenant}`",
        f"tenants in the file or the billing history: {', '.join(known) or 'none'}",
    )
