"""Builds the report view models from the spec and the store (and billing's results).

Pure given its inputs: the connection is only read, and `now`/`as_of` come from the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import duckdb

from hosting.reports import charts, data
from hosting.reports.models import (
    AlertView,
    Chart,
    ConsumerRow,
    DeploymentUsage,
    HealthSegment,
    HealthTrack,
    InvoiceView,
    LimitRow,
    PlanRevenue,
    PlatformReport,
    RestoreDrillView,
    ScaleEventView,
    StorageRow,
    SuspendedRow,
    Tip,
    UsageReport,
)
from hosting.spec.limits import NOUN, usage
from hosting.spec.models import Spec, Tenant

GB = 2**30
MB = 2**20
STORAGE_TYPES = ("code", "database", "static", "logs", "cache")
NEAR = 0.9  # the product's 90% warning
LOGS_SHARE_TIP = 0.25
GROWTH_WINDOW = timedelta(days=7)


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time(0, 0))  # naive UTC, as the store keeps it


def fmt_bytes(n: float) -> str:
    divisor, unit = charts.byte_scale(abs(n))
    return f"{n:.0f} B" if unit == "B" else f"{n / divisor:,.1f} {unit}"


# --- storage -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StorageState:
    time: datetime
    by_type: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_type.values())


def storage_timeline(
    events: Sequence[tuple[datetime, str, str, str, int]],
) -> list[StorageState]:
    """Totals by type after each measurement: each (deployment, type) value holds until the
    next measurement of the same pair (SPEC section 3)."""
    current: dict[tuple[str, str, str], int] = {}
    out: list[StorageState] = []
    for when, tenant, dep, kind, size in events:
        current[(tenant, dep, kind)] = size
        by_type: dict[str, int] = {}
        for (_, _, k), v in current.items():
            by_type[k] = by_type.get(k, 0) + v
        if out and out[-1].time == when:
            out[-1] = StorageState(when, by_type)
        else:
            out.append(StorageState(when, by_type))
    return out


def state_at(timeline: Sequence[StorageState], when: datetime) -> StorageState:
    last = StorageState(when, {})
    for state in timeline:
        if state.time > when:
            break
        last = state
    return last


def storage_chart(
    timeline: Sequence[StorageState], start: datetime, end: datetime, limit: int
) -> Chart:
    at_start = state_at(timeline, start)
    inside = [s for s in timeline if start < s.time < end]
    kinds = [k for k in STORAGE_TYPES if any(k in s.by_type for s in [at_start, *inside])]
    kinds += sorted({k for s in inside for k in s.by_type} - set(kinds))
    states = [StorageState(start, at_start.by_type), *inside]
    top = max([s.total for s in states] + [limit])
    divisor, unit = charts.byte_scale(top)

    def stepped(value_of: dict[str, int] | None, kind: str | None) -> list[charts.Point]:
        pts: list[charts.Point] = []
        prev: float | None = None
        for s in states:
            v = float(s.total if kind is None else s.by_type.get(kind, 0))
            if prev is not None:
                pts.append((s.time, prev))
            pts.append((s.time, v))
            prev = v
        if prev is not None:
            pts.append((end, prev))
        return pts

    series = [(k, stepped(None, k)) for k in kinds]
    if len(kinds) > 1:
        series.insert(0, ("total", stepped(None, None)))
    now = states[-1]
    return charts.line_chart(
        "Storage by type",
        series,
        start,
        end,
        unit=unit,
        scale=divisor,
        limit=float(limit),
        limit_label=f"plan limit {fmt_bytes(limit)}",
        value_label=fmt_bytes,
        summary=f"total {fmt_bytes(now.total)} of {fmt_bytes(limit)}",
    )


def days_until_limit(timeline: Sequence[StorageState], now: datetime, limit: int) -> float | None:
    """Days until the total reaches `limit` at the growth rate of the last week (or of the
    history there is, at least one day); None when storage is not growing."""
    if not timeline:
        return None
    current = state_at(timeline, now).total
    since = max(now - GROWTH_WINDOW, timeline[0].time)
    span_days = (now - since).total_seconds() / 86400
    if span_days < 1 or current >= limit:
        return None
    rate = (current - state_at(timeline, since).total) / span_days
    if rate <= 0:
        return None
    return (limit - current) / rate


# --- usage report ------------------------------------------------------------------------


def _deployment_charts(
    name: str,
    buckets: Sequence[data.Bucket],
    size: int,
    start: datetime,
    end: datetime,
    cpu_limit: float | None,
    mem_limit: int | None,
) -> tuple[Chart, ...]:
    per = {300: "5 min", 900: "15 min", 3600: "hour", 10800: "3 h", 21600: "6 h", 86400: "day"}[
        size
    ]

    def pts(get: object) -> list[charts.Point]:
        f = get  # typed by call sites below
        return [(b.time, v) for b in buckets if (v := f(b)) is not None]  # type: ignore[operator]

    cpu = pts(lambda b: b.cpu)
    mem = pts(lambda b: b.memory)
    bw_in = pts(lambda b: float(b.bandwidth_in))
    bw_out = pts(lambda b: float(b.bandwidth_out))
    rate = pts(lambda b: b.requests / (size / 60))
    err = pts(lambda b: 100.0 * b.errors / b.requests if b.requests else None)
    rt = pts(lambda b: b.response_ms)
    mem_div, mem_unit = charts.byte_scale(max([v for _, v in mem] + [float(mem_limit or 0)]))
    bw_div, bw_unit = charts.byte_scale(max([v for _, v in bw_in + bw_out] + [0.0]))
    return (
        charts.line_chart(
            "CPU",
            [(name, cpu)],
            start,
            end,
            unit="% of one core",
            limit=cpu_limit,
            limit_label=f"limit {cpu_limit:g}%" if cpu_limit else "",
            value_label=lambda v: f"{v:.1f}%",
        ),
        charts.line_chart(
            "Memory",
            [(name, mem)],
            start,
            end,
            unit=mem_unit,
            scale=mem_div,
            limit=float(mem_limit) if mem_limit else None,
            limit_label=f"limit {fmt_bytes(mem_limit)}" if mem_limit else "",
            value_label=fmt_bytes,
        ),
        charts.line_chart(
            "Bandwidth",
            [("in", bw_in), ("out", bw_out)],
            start,
            end,
            unit=f"{bw_unit} per {per}",
            scale=bw_div,
            value_label=fmt_bytes,
        ),
        charts.line_chart(
            "Request rate",
            [(name, rate)],
            start,
            end,
            unit="requests/min",
            value_label=lambda v: f"{v:,.1f}/min",
        ),
        charts.line_chart(
            "Error rate",
            [(name, err)],
            start,
            end,
            unit="% of requests",
            value_label=lambda v: f"{v:.1f}%",
        ),
        charts.line_chart(
            "Response time",
            [(name, rt)],
            start,
            end,
            unit="ms",
            value_label=lambda v: f"{v:,.0f} ms",
        ),
    )


def _health_tracks(
    checks: Sequence[tuple[str, datetime, str]], start: datetime, end: datetime
) -> tuple[HealthTrack, ...]:
    span = max((end - start).total_seconds(), 1.0)
    by_dep: dict[str, list[tuple[datetime, str]]] = {}
    for dep, when, status in checks:
        by_dep.setdefault(dep, []).append((when, status))
    tracks = []
    for dep, rows in by_dep.items():
        merged: list[tuple[datetime, datetime, str]] = []
        for i, (when, status) in enumerate(rows):
            until = rows[i + 1][0] if i + 1 < len(rows) else end
            if merged and merged[-1][2] == status:
                merged[-1] = (merged[-1][0], until, status)
            else:
                merged.append((when, until, status))
        segs = tuple(
            HealthSegment(
                round(100 * (a - start).total_seconds() / span, 3),
                round(100 * (b - a).total_seconds() / span, 3),
                s if s in ("healthy", "unhealthy") else "unknown",
                f"{s} {a:%b %-d %H:%M} – {b:%b %-d %H:%M} UTC",
            )
            for a, b, s in merged
        )
        failures = sum(1 for _, s in rows if s != "healthy")
        tracks.append(HealthTrack(dep, segs, len(rows), failures))
    return tuple(tracks)


METERING_LEVELS = {"warning": "90%", "full": "100%", "overage": "100%"}


def _alert_view(rec: dict[str, object]) -> AlertView:
    """A row of the metering agent's `alerts` table (0002_metering.sql)."""
    level = str(rec.get("level") or "")
    when = rec.get("_time")
    return AlertView(
        when if isinstance(when, datetime) else None,
        METERING_LEVELS.get(level, level),
        str(rec.get("kind") or rec.get("deployment") or ""),
        str(rec.get("message") or ""),
    )


def usage_report(
    spec: Spec,
    conn: duckdb.DuckDBPyConnection,
    tenant_id: str,
    tenant: Tenant,
    as_of: date,
    generated_at: datetime,
    projected: InvoiceView | None = None,
    projected_note: str = "",
) -> UsageReport:
    """`projected`, when billing has one, also fixes the period: billing knows the anchor
    from the subscription history (a yearly plan change moves it); the file does not."""
    plan = spec.plan_of(tenant)
    if projected is not None:
        p_start, p_end = projected.period_start, projected.period_end
    else:
        p_start, p_end = data.billing_period(tenant.started, as_of)
    start = _midnight(p_start)
    end = min(_midnight(as_of + timedelta(days=1)), _midnight(p_end))
    size = data.bucket_seconds(start, end)
    buckets = data.metric_buckets(conn, tenant_id, start, end, size)
    totals = data.metric_totals(conn, start, end, tenant_id)
    rows = data.deployment_rows(conn, tenant_id)
    limits = plan.limits or tenant.limits
    cpu_limit = limits.cpus * 100 if limits else None
    mem_limit = limits.memory_mb * MB if limits else None

    seen = set(buckets) | {d for (_, d) in rows}
    names = list(tenant.deployments) + sorted(seen - set(tenant.deployments))
    deployments = []
    for name in names:
        spec_dep = tenant.deployments.get(name)
        row = rows.get((tenant_id, name), {})
        tot = totals.get((tenant_id, name), {})
        deployments.append(
            DeploymentUsage(
                name=name,
                type=spec_dep.type if spec_dep else str(row.get("type", "?")),
                status=str(row.get("status", "not deployed" if spec_dep else "removed")),
                health=str(row.get("health", "unknown")),
                charts=_deployment_charts(
                    name, buckets.get(name, []), size, start, end, cpu_limit, mem_limit
                ),
                requests=int(tot.get("requests", 0)),
                errors=int(tot.get("errors", 0)),
                bandwidth_in=int(tot.get("bandwidth_in", 0)),
                bandwidth_out=int(tot.get("bandwidth_out", 0)),
                avg_cpu=tot.get("avg_cpu"),
                peak_memory=tot.get("peak_memory"),
                samples=int(tot.get("samples", 0)),
            )
        )

    timeline = storage_timeline(data.storage_events(conn, end, tenant_id))
    now_state = state_at(timeline, end)
    total = now_state.total
    limit = plan.storage_gb * GB
    storage_now = tuple(
        StorageRow(k, now_state.by_type[k], now_state.by_type[k] / total if total else 0.0)
        for k in [*STORAGE_TYPES, *sorted(set(now_state.by_type) - set(STORAGE_TYPES))]
        if k in now_state.by_type
    )
    bw_out = sum(d.bandwidth_out for d in deployments)
    bw_limit = plan.bandwidth_gb * GB

    checks = data.health_checks(conn, tenant_id, start, end)
    order = {name: i for i, name in enumerate(names)}
    stored = data.stored_alerts(conn, tenant_id, start, end) or []
    alerts = [_alert_view(r) for r in stored]
    recorded = {(a.subject, a.level) for a in alerts}
    for what, used, cap in (("storage", total, limit), ("bandwidth", bw_out, bw_limit)):
        if (what, "100%" if cap and used >= cap else "90%") in recorded:
            continue  # the agent already raised it; say it once
        if cap and used >= cap:
            alerts.append(
                AlertView(
                    None,
                    "100%",
                    what,
                    f"{what} {fmt_bytes(used)} is over the "
                    f"plan's {fmt_bytes(cap)} ({100 * used / cap:.0f}%)",
                )
            )
        elif cap and used >= NEAR * cap:
            alerts.append(
                AlertView(
                    None,
                    "90%",
                    what,
                    f"{what} {fmt_bytes(used)} of {fmt_bytes(cap)} ({100 * used / cap:.0f}%)",
                )
            )

    tips = _tips(deployments, now_state, timeline, end, limit, bw_out, bw_limit, start, p_end)
    return UsageReport(
        platform=spec.platform.name,
        tenant_id=tenant_id,
        tenant_name=tenant.name,
        tenant_email=tenant.email,
        plan=plan.name,
        billing_cycle=tenant.billing_cycle,
        period_start=p_start,
        period_end=p_end,
        as_of=as_of,
        generated_at=generated_at,
        deployments=tuple(deployments),
        storage_now=storage_now,
        storage_total=total,
        storage_limit=limit,
        storage_chart=storage_chart(timeline, start, end, limit),
        bandwidth_out_total=bw_out,
        bandwidth_limit=bw_limit,
        health=_health_tracks(
            sorted(checks or [], key=lambda c: (order.get(c[0], len(order)), c[0], c[1])),
            start,
            end,
        ),
        health_available=bool(checks),
        alerts=tuple(alerts),
        projected=projected,
        projected_note=projected_note,
        tips=tuple(tips),
        restore_drills=_restore_drills(conn, tenant_id, tenant),
        scale_events=_scale_events(conn, tenant_id, p_start, as_of),
    )


def _scale_events(
    conn: duckdb.DuckDBPyConnection, tenant_id: str, start: date, as_of: date
) -> tuple[ScaleEventView, ...]:
    """The autoscaler's changes in the period up to the report's day, in order."""
    rows = conn.execute(
        'SELECT deployment, "timestamp", from_replicas, to_replicas, reason FROM scale_events '
        'WHERE tenant = ? AND "timestamp" >= ? AND "timestamp" < ? ORDER BY "timestamp"',
        [tenant_id, start, as_of + timedelta(days=1)],
    ).fetchall()
    return tuple(ScaleEventView(*row) for row in rows)


def _restore_drills(
    conn: duckdb.DuckDBPyConnection, tenant_id: str, tenant: Tenant
) -> tuple[RestoreDrillView, ...]:
    from hosting.backups.drills import describe, latest_by_deployment

    drilled = latest_by_deployment(conn, tenant_id)
    out = []
    for name, dep in tenant.deployments.items():
        if dep.type == "database":
            d = drilled.get(name)
            state = "never" if d is None else "ok" if d.ok else "failed"
            out.append(RestoreDrillView(name, state, "" if d is None else describe(d)))
    return tuple(out)


def _tips(
    deployments: Sequence[DeploymentUsage],
    now_state: StorageState,
    timeline: Sequence[StorageState],
    now: datetime,
    limit: int,
    bw_out: int,
    bw_limit: int,
    start: datetime,
    p_end: date,
) -> list[Tip]:
    tips = []
    total = now_state.total
    logs = now_state.by_type.get("logs", 0)
    if total and logs / total >= LOGS_SHARE_TIP:
        tips.append(
            Tip(
                "Logs take a large share of your storage",
                f"Logs are {fmt_bytes(logs)}, {100 * logs / total:.0f}% of your storage. Rotating "
                "or shipping them elsewhere frees space without touching your data.",
            )
        )
    for d in deployments:
        if d.type in ("web", "api") and d.requests == 0 and d.status != "stopped":
            tips.append(
                Tip(
                    f"{d.name} looks idle",
                    f"{d.name} served no requests this period. If it is not needed, "
                    "`stopped: true` keeps its data and configuration and frees its resources.",
                )
            )
    if limit and total >= limit:
        tips.append(
            Tip(
                "Storage is full",
                f"{fmt_bytes(total)} is {100 * total / limit:.0f}% of the plan's "
                f"{fmt_bytes(limit)}: `hosting apply` refuses changes for this tenant until "
                "it is below 100%. Clear logs or cache, or move to a plan with more storage.",
            )
        )
    days = days_until_limit(timeline, now, limit)
    if days is not None:
        when = (now + timedelta(days=days)).date()
        tips.append(
            Tip(
                "Storage is growing",
                f"At the growth rate of the last days, storage reaches the plan's "
                f"{fmt_bytes(limit)} in about {days:.0f} days (around {when:%b %-d, %Y}).",
            )
        )
    elapsed = (now - start).total_seconds()
    period = (_midnight(p_end) - start).total_seconds()
    if bw_limit and elapsed > 0 and period > 0:
        projected = bw_out * period / elapsed
        if bw_out < bw_limit <= projected:
            tips.append(
                Tip(
                    "Bandwidth may exceed the plan",
                    f"At this pace outbound traffic reaches about {fmt_bytes(projected)} this "
                    f"period, over the {fmt_bytes(bw_limit)} included; overage is billed per GB.",
                )
            )
    for d in deployments:
        if d.requests >= 100 and d.errors / d.requests >= 0.05:
            tips.append(
                Tip(
                    f"{d.name} returns many errors",
                    f"{100 * d.errors / d.requests:.1f}% of its {d.requests:,} requests failed.",
                )
            )
    return tips


# --- platform report ---------------------------------------------------------------------


def platform_report(
    spec: Spec,
    conn: duckdb.DuckDBPyConnection,
    as_of: date,
    generated_at: datetime,
    invoices: Sequence[tuple[InvoiceView, str]] = (),
    notes: Sequence[str] = (),
) -> PlatformReport:
    """`invoices` pairs each invoice with the plan it is counted under."""
    window_start = as_of.replace(day=1)
    end = _midnight(as_of + timedelta(days=1))
    plans: dict[str, PlanRevenue] = {}
    for tenant in spec.tenants.values():
        plan = spec.plan_of(tenant)
        value = (
            plan.price_monthly
            if tenant.billing_cycle == "monthly"
            else (plan.price_yearly / 12).quantize(Decimal("0.01"))
        )
        old = plans.get(plan.name, PlanRevenue(plan.name, 0, Decimal("0.00"), Decimal("0.00"), 0))
        plans[plan.name] = PlanRevenue(
            plan.name, old.tenants + 1, old.monthly_value + value, old.invoiced, old.invoices
        )
    status: dict[str, tuple[int, Decimal]] = {}
    for inv, plan_name in invoices:
        # Counted by the period they bill (its end = the number's date), not by when
        # `invoice run` happened to be executed, so an as-of report is reproducible.
        if inv.period_end > as_of:
            continue
        n, amt = status.get(inv.status, (0, Decimal("0.00")))
        status[inv.status] = (n + 1, amt + inv.total)
        if window_start <= inv.period_end <= as_of and inv.status != "refunded":
            old = plans.get(
                plan_name, PlanRevenue(plan_name, 0, Decimal("0.00"), Decimal("0.00"), 0)
            )
            plans[plan_name] = PlanRevenue(
                plan_name,
                old.tenants,
                old.monthly_value,
                old.invoiced + inv.subtotal,  # revenue is before tax (issue 15): tax is not ours
                old.invoices + 1,
            )
    order = {name: i for i, name in enumerate(spec.plans)}
    revenue = tuple(sorted(plans.values(), key=lambda p: order.get(p.plan, 999)))

    timeline_all = data.storage_events(conn, end)
    limit_rows: list[LimitRow] = []
    consumers: list[ConsumerRow] = []
    deployments = 0
    for tid, tenant in spec.tenants.items():
        plan = spec.plan_of(tenant)
        deployments += len(tenant.deployments)
        p_start, _ = data.billing_period(tenant.started, as_of)
        totals = data.metric_totals(conn, _midnight(p_start), end, tid)
        tl = storage_timeline([e for e in timeline_all if e[1] == tid])
        stored = state_at(tl, end).total
        bw = sum(t["bandwidth_out"] for t in totals.values())
        consumers.append(
            ConsumerRow(
                tid,
                tenant.name,
                plan.name,
                stored,
                bw,
                sum(t["requests"] for t in totals.values()),
                sum(t["cpu_hours"] for t in totals.values()),
            )
        )
        checks = [
            ("storage", stored, plan.storage_gb * GB, True),
            ("bandwidth this period", bw, plan.bandwidth_gb * GB, True),
        ] + [(NOUN[k], u.used, u.allowed, False) for k, u in usage(spec, tenant).items()]
        for what, used, cap, is_bytes in checks:
            if cap <= 0 and used <= 0:
                continue
            pct = 100.0 * used / cap if cap else float("inf")
            over = used > cap if not is_bytes else used >= cap
            if over or (is_bytes and used >= NEAR * cap) or (not is_bytes and used == cap):
                limit_rows.append(
                    LimitRow(
                        tid,
                        tenant.name,
                        plan.name,
                        what,
                        fmt_bytes(used) if is_bytes else str(used),
                        fmt_bytes(cap) if is_bytes else str(cap),
                        pct,
                        "over" if over else "near",
                    )
                )
    limit_rows.sort(key=lambda r: (-r.percent, r.tenant_id))
    consumers.sort(key=lambda c: (-c.bandwidth_out, -c.storage_bytes, c.tenant_id))
    return PlatformReport(
        platform=spec.platform.name,
        domain=spec.platform.domain,
        as_of=as_of,
        window_start=window_start,
        generated_at=generated_at,
        currency="USD",
        revenue=revenue,
        invoiced_total=sum((p.invoiced for p in revenue), Decimal("0.00")),
        monthly_total=sum((p.monthly_value for p in revenue), Decimal("0.00")),
        invoice_status=tuple((s, n, a) for s, (n, a) in sorted(status.items())),
        limits=tuple(limit_rows),
        consumers=tuple(consumers[:10]),
        tenants=len(spec.tenants),
        deployments=deployments,
        notes=tuple(notes),
        suspended=_suspended(conn, spec, as_of),
    )


def _suspended(
    conn: duckdb.DuckDBPyConnection, spec: Spec, as_of: date
) -> tuple[SuspendedRow, ...]:
    """Suspensions standing at the end of `as_of`, with the unpaid invoice and how many
    reminders went out for it (the payments tables, migration 0007)."""
    rows = conn.execute(
        "SELECT s.tenant, s.suspended_on, s.invoice_number, i.amount, "
        "(SELECT count(*) FROM dunning_steps d WHERE d.invoice_number = s.invoice_number "
        "AND d.step = 'reminder' AND d.outcome <> 'skipped') "
        "FROM tenant_suspensions s LEFT JOIN billing_invoices i "
        "ON i.invoice_number = s.invoice_number WHERE s.suspended_on <= $1 "
        "AND (s.lifted_on IS NULL OR s.lifted_on > $1) ORDER BY s.suspended_on, s.tenant",
        [as_of],
    ).fetchall()
    names = {tid: t.name for tid, t in spec.tenants.items()}
    return tuple(
        SuspendedRow(str(t), names.get(str(t), str(t)), on, str(n), a or Decimal(0), int(r))
        for t, on, n, a, r in rows
    )


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
