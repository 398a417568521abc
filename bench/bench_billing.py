"""Billing benchmarks (issue 5), each printed with its throughput and as a ratio to a baseline
measured in the same run on the same data (these machines are noisy).

1. Aggregation: a month of minute samples for 1,000 deployments (43.2 million rows, generated
   inside DuckDB with range()) and hourly storage measurements, into per-tenant usage with
   `hosting.billing.usage.aggregate` (bandwidth sum + time-weighted storage).
   Baseline: a bare `SELECT sum(bandwidth_out)` scan of the same table. Target ≤ 5 s.
2. Invoicing 10,000 tenants with `hosting.billing.invoices.run` (records the new
   subscriptions, finds the ended periods, aggregates, prices, numbers, inserts set-based).
   Baseline: inserting the same invoices and lines with one set-based INSERT each (the write
   floor, no pricing or usage). Target ≤ 20 s.

Run: python bench/bench_billing.py   (BENCH_SCALE=0.1 for a quick run at a tenth of the size)
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

import yaml

from hosting import store
from hosting.billing import invoices
from hosting.billing.usage import Window, aggregate
from hosting.spec import loads

SCALE = float(os.environ.get("BENCH_SCALE", "1"))
DEPLOYMENTS = int(1_000 * SCALE)
DEPLOYMENTS_PER_TENANT = 4
MINUTES = 30 * 24 * 60
TENANTS = int(10_000 * SCALE)


def timed(fn: object) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()  # type: ignore[operator]
    return time.perf_counter() - start, result


def bench_aggregation(folder: Path) -> None:
    db = folder / "agg.duckdb"
    rows = DEPLOYMENTS * MINUTES
    tenants = max(1, DEPLOYMENTS // DEPLOYMENTS_PER_TENANT)
    with store.connect(db) as conn:
        gen, _ = timed(
            lambda: conn.execute(
                f"""
                INSERT INTO deployment_metrics (event_id, tenant, deployment, "timestamp",
                    cpu_usage, bandwidth_out)
                SELECT 'm' || i, 't' || ((i % {DEPLOYMENTS}) // {DEPLOYMENTS_PER_TENANT}),
                       'd' || (i % {DEPLOYMENTS}),
                       TIMESTAMP '2025-06-01' + to_minutes((i // {DEPLOYMENTS})::BIGINT),
                       (i % 100)::DOUBLE,
                       CASE WHEN i % 17 = 0 THEN NULL ELSE (i * 7919) % 5000000 END
                FROM range({rows}) r(i)
                """
            )
        )
        conn.execute(
            f"""
            INSERT INTO deployment_storage (event_id, tenant, deployment, storage_type,
                size_bytes, last_calculated)
            SELECT 's' || i, 't' || ((i % {DEPLOYMENTS}) // {DEPLOYMENTS_PER_TENANT}),
                   'd' || (i % {DEPLOYMENTS}), 'code',
                   ((i * 104729) % 20000000000)::BIGINT,
                   TIMESTAMP '2025-05-31' + to_hours((i // {DEPLOYMENTS})::BIGINT)
            FROM range({DEPLOYMENTS * (31 * 24)}) r(i)
            """
        )
        conn.execute("CHECKPOINT")
    print(f"generated {rows:,} metric rows inside DuckDB in {gen:.1f} s (not measured)")
    windows = [
        Window(f"t{t}", datetime(2025, 6, 1), datetime(2025, 7, 1), datetime(2025, 7, 1))
        for t in range(tenants)
    ]
    with store.connect(db) as conn:
        base, _ = timed(
            lambda: conn.execute("SELECT sum(bandwidth_out) FROM deployment_metrics").fetchone()
        )
        agg, result = timed(lambda: aggregate(conn, windows))
    assert isinstance(result, list) and len(result) == tenants
    assert all(r.bandwidth_bytes > 0 and r.storage_byte_us > 0 for r in result)
    ok = "✔" if agg <= 5 else "✘"
    print(f"aggregation baseline (bare sum scan): {base:.3f} s")
    print(
        f"aggregation into {tenants} tenants' usage: {agg:.3f} s = {base and agg / base:.1f}× "
        f"baseline, {rows / agg / 1e6:.1f} M rows/s — target ≤ 5 s {ok}"
    )


def bench_invoicing(folder: Path) -> None:
    db = folder / "inv.duckdb"
    doc = {
        "version": 1,
        "platform": {"name": "bench", "domain": "apps.localhost", "public_ipv4": "127.0.0.1"},
        "tenants": {
            f"t{i}": {
                "name": f"Tenant {i}",
                "email": f"billing@t{i}.test",
                "plan": ("free", "starter", "pro")[i % 3],
                "billing_cycle": "yearly" if i % 4 == 0 else "monthly",
                "started": date(2025, 1, 1 + i % 28).isoformat(),
            }
            for i in range(TENANTS)
        },
    }
    spec = loads(yaml.safe_dump(doc))
    with store.connect(db) as conn:
        conn.execute(
            f"""
            INSERT INTO deployment_metrics (event_id, tenant, deployment, "timestamp",
                bandwidth_out)
            SELECT 'm' || i, 't' || (i % {TENANTS}), 'web',
                   TIMESTAMP '2025-01-01' + to_hours((i // {TENANTS})::BIGINT * 24),
                   ((i * 7919) % 20)::BIGINT * 1073741824
            FROM range({TENANTS * 60}) r(i)
            """
        )
    run, result = timed(lambda: invoices.run(db, spec, date(2025, 2, 28)))
    assert isinstance(result, invoices.RunResult)
    made = result.created
    assert len(made) >= TENANTS
    lines = sum(len(i.lines) for i in made)

    floor_db = folder / "floor.duckdb"
    with store.connect(floor_db) as conn:
        conn.execute("BEGIN TRANSACTION")
        floor, _ = timed(lambda: invoices._insert(conn, made, len(made)))
        conn.execute("COMMIT")
    again, second = timed(lambda: invoices.run(db, spec, date(2025, 2, 28)))
    assert isinstance(second, invoices.RunResult) and second.created == []
    ok = "✔" if run <= 20 else "✘"
    print(f"invoicing baseline (set-based insert of the same rows only): {floor:.3f} s")
    print(
        f"invoice run for {TENANTS:,} tenants: {len(made):,} invoices, {lines:,} lines in "
        f"{run:.3f} s = {run / floor:.1f}× baseline, {len(made) / run:,.0f} invoices/s — "
        f"target ≤ 20 s {ok}"
    )
    print(f"re-run (nothing to do, idempotent): {again:.3f} s")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bench_aggregation(Path(tmp))
        bench_invoicing(Path(tmp))


if __name__ == "__main__":
    main()
