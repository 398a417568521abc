"""The running period: `subscription TENANT` (getActiveSubscription) and `usage TENANT`.

Usage so far covers [period start, end of the as-of day). The projection assumes the rest
of the period looks like what is known: storage stays at its level at the cut-off (each
measurement holds until the next), bandwidth continues at the average rate so far.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb

from hosting import store
from hosting.billing import schedule
from hosting.billing.documents import tax_of
from hosting.billing.money import GB, ZERO, div, mul
from hosting.billing.pricing import Line, Usage, cost_of, price_period, total
from hosting.billing.schedule import HistoryRow, Period
from hosting.billing.subscriptions import (
    check_as_of,
    load_history,
    plan_sync,
    require_tenant,
    utcnow,
)
from hosting.billing.usage import Window, aggregate, midnight, storage_level
from hosting.errors import BillingError
from hosting.spec.models import Spec


@dataclass(frozen=True)
class CurrentUsage:
    tenant: str
    as_of: date
    period_start: date
    period_end: date
    storage_gb: Decimal  # time-weighted average so far
    storage_current_gb: Decimal  # level at the cut-off
    storage_included_gb: int
    bandwidth_gb: Decimal  # so far
    bandwidth_included_gb: int
    projected_storage_gb: Decimal
    projected_bandwidth_gb: Decimal
    projected_lines: tuple[Line, ...]
    base_cost: Decimal
    storage_cost: Decimal
    bandwidth_cost: Decimal
    projected_cost: Decimal  # the projected invoice's total: net + tax, as `invoice run` will
    currency: str = "USD"
    tax_rate: Decimal = Decimal(0)  # the tenant's, percent (issue 15)
    projected_tax: Decimal = ZERO


@dataclass(frozen=True)
class HistoryEntry:
    effective: date
    event: str
    plan: str | None
    billing_cycle: str | None


@dataclass(frozen=True)
class ActiveSubscription:
    tenant: str
    subscription_id: str | None
    status: str  # active | ended | not_started
    plan: str | None
    billing_cycle: str | None
    started: date | None
    anchor: date | None
    current_period_start: date | None
    current_period_end: date | None
    limits: dict[str, object]
    usage: CurrentUsage | None
    history: tuple[HistoryEntry, ...]


def current_period(tenant: str, rows: list[HistoryRow], day: date) -> Period | None:
    for period in schedule.periods(tenant, rows, until=day + timedelta(days=1)):
        if period.start <= day < period.end:
            return period
    return None


def _usage(
    conn: duckdb.DuckDBPyConnection, period: Period, day: date, tax_rate: Decimal
) -> CurrentUsage:
    start, end = midnight(period.start), midnight(period.end)
    # Today's usage so far ends now, not at midnight: the rate must not count hours to come.
    now = utcnow()
    day_end = now if day == now.date() else midnight(day + timedelta(days=1))
    cutoff = max(min(day_end, end), start + timedelta(seconds=1))
    so_far_w = Window(period.tenant, start, cutoff, cutoff)
    (raw,) = aggregate(conn, [so_far_w])
    so_far = raw.usage(so_far_w)
    level = storage_level(conn, period.tenant, cutoff)
    span_us = _us(midnight(period.nominal_end) - start)
    elapsed_us = _us(cutoff - start)
    remaining_us = _us(end - cutoff)
    projected_storage = div(raw.storage_byte_us + level * remaining_us, span_us * GB)
    projected_bw = div(mul(raw.bandwidth_bytes, _us(end - start)), elapsed_us * GB)
    lines = tuple(price_period(period, Usage(projected_storage, projected_bw)))
    net = total(list(lines))
    tax = tax_of(net, tax_rate) if tax_rate else ZERO
    return CurrentUsage(
        tenant=period.tenant,
        as_of=day,
        period_start=period.start,
        period_end=period.end,
        storage_gb=so_far.storage_gb,
        storage_current_gb=div(level, GB),
        storage_included_gb=period.included.storage_gb,
        bandwidth_gb=so_far.bandwidth_gb,
        bandwidth_included_gb=period.included.bandwidth_gb,
        projected_storage_gb=projected_storage,
        projected_bandwidth_gb=projected_bw,
        projected_lines=lines,
        base_cost=cost_of(list(lines), "base", "credit"),
        storage_cost=cost_of(list(lines), "storage"),
        bandwidth_cost=cost_of(list(lines), "bandwidth"),
        projected_cost=net + tax,
        tax_rate=tax_rate,
        projected_tax=tax,
    )


def _us(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def usage(
    store_path: Path, spec: Spec | None, tenant: str, as_of: date | None = None
) -> CurrentUsage:
    """`hosting usage TENANT`: the running period's usage and projected cost."""
    sub = active_subscription(store_path, spec, tenant, as_of)
    if sub.usage is not None:
        return sub.usage
    day = as_of or "today"
    if sub.status == "not_started" and sub.started is not None:
        raise BillingError(
            f"{tenant} has no running billing period on {day}: its first billing period "
            f"starts on {sub.started}"
        )
    if sub.status == "ended":
        raise BillingError(
            f"{tenant} has no running billing period on {day}: its subscription has ended",
            f"its invoices: `hosting invoice list --tenant {tenant}`",
        )
    raise BillingError(
        f"{tenant} has no running billing period on {day} ({sub.status})",
        "run `hosting subscription sync` after adding the tenant to the file",
    )


def active_subscription(
    store_path: Path, spec: Spec | None, tenant: str, as_of: date | None = None
) -> ActiveSubscription:
    """The product's getActiveSubscription for one tenant, as of a day (default today)."""
    day = check_as_of(as_of)
    with store.connect(store_path) as conn:
        history = load_history(conn, [tenant])
        require_tenant(spec, conn, tenant)
        rows = history.get(tenant, [])
        recorded = bool(rows)
        if not rows and spec is not None:
            # In the file but not synced yet: show it as sync would record it.
            pending = plan_sync(spec, {}, {}, None, only_new=True, only={tenant})
            rows = [
                HistoryRow(r[2], tenant, r[1], r[3], r[4], schedule.Terms(*r[5:11]))
                for r in pending.history
            ]
        period = current_period(tenant, rows, day)
        entry = spec.tenants.get(tenant) if spec is not None else None
        rate = (entry.tax_rate if entry is not None else None) or Decimal(0)
        use = _usage(conn, period, day, rate) if period is not None else None
    segs = schedule.segments(rows)
    last_sub = segs[-1] if segs else None
    seg = last_sub.segments[-1] if last_sub and last_sub.segments else None
    started = last_sub.segments[0].start if last_sub and last_sub.segments else None
    if period is not None:
        status = "active"
    elif started is not None and started > day:
        status = "not_started"
    else:
        status = "ended"
    terms = period.included if period is not None else (seg.terms if seg else None)
    return ActiveSubscription(
        tenant=tenant,
        # Before sync nothing is recorded: no id to show (a made-up one changed every run).
        subscription_id=last_sub.subscription_id if last_sub and recorded else None,
        status=status,
        plan=terms.plan if terms else None,
        billing_cycle=terms.cycle if terms else None,
        started=started,
        anchor=seg.anchor if seg else None,
        current_period_start=period.start if period else None,
        current_period_end=period.end if period else None,
        limits=_limits(spec, tenant, terms),
        usage=use,
        history=tuple(
            HistoryEntry(
                r.effective,
                r.event,
                r.terms.plan if r.terms else None,
                r.terms.cycle if r.terms else None,
            )
            for r in rows
        ),
    )


def _limits(spec: Spec | None, tenant: str, terms: schedule.Terms | None) -> dict[str, object]:
    out: dict[str, object] = {}
    if terms is not None:
        out.update(
            storage_gb=terms.storage_gb,
            bandwidth_gb=terms.bandwidth_gb,
            price_monthly=terms.price_monthly,
            price_yearly=terms.price_yearly,
        )
    t = spec.tenants.get(tenant) if spec is not None else None
    if spec is not None and t is not None:
        plan = spec.plan_of(t)
        out.update(databases=plan.databases, apis=plan.apis, websites=plan.websites)
        lim = spec.limits_of(t)
        out.update(
            cpus=lim.cpus,
            memory_mb=lim.memory_mb,
            disk_io_mbps=lim.disk_io_mbps,
            network_mbps=lim.network_mbps,
        )
    return out
