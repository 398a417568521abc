"""DuckDB ingestion of usage samples (issue 4), printed as a ratio to row-by-row inserts
measured in the same run (these machines are noisy).

1. `meter import` of 1,000,000 SPEC section-4 events (JSON Lines on disk → validated by
   DuckDB → anti-joined on event_id → inserted, one transaction), into an empty store.
2. The same into a store that already holds those 1,000,000 (every id is skipped), and a
   second million of new ids into it (the dedupe then joins against 1 M existing ids).
3. The collector path (`write_metrics`: columns as lists, unnested by DuckDB) in batches of
   10,000 samples, as the agent writes them.
Baseline: row-by-row `INSERT … VALUES (?, …)` through executemany, measured on 5,000 rows
and extrapolated as rows/s. Target: ≥ 500,000 rows/s for the import.

Run: python bench/bench_ingest.py   (BENCH_ROWS=100000 for a quick run)
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from hosting.metering.ingest import import_events, write_metrics
from hosting.metering.samples import MetricSample
from hosting.store import connect

ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))
BASELINE_ROWS = 5_000
BASE = datetime(2026, 11, 1)


def write_events(path: Path, start: int, count: int) -> None:
    metrics = ["bandwidth_out", "bandwidth_in", "requests_count", "cpu_usage", "memory_usage"]
    with path.open("w") as fh:
        for i in range(start, start + count):
            t = (BASE + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
            dep = f"t{i % 250}/d{i % 7}"
            if i % 10 == 9:
                event = {"id": f"e-{i}", "deployment": dep, "time": t, "metric": "storage",
                         "storage_type": "database", "value": i * 1000}  # fmt: skip
            else:
                metric = metrics[i % 5]
                value: float = i % 997 + 0.5 if metric == "cpu_usage" else i % 100_000
                event = {"id": f"e-{i}", "deployment": dep, "time": t, "metric": metric,
                         "value": value}  # fmt: skip
            fh.write(json.dumps(event) + "\n")


def row_by_row(folder: Path) -> float:
    store = folder / "baseline.duckdb"
    with connect(store) as conn:
        data = [
            (f"r-{i}", "t1", "d1", BASE + timedelta(seconds=i), None, None, None, i, None, None,
             None)
            for i in range(BASELINE_ROWS)
        ]  # fmt: skip
        started = time.perf_counter()
        conn.executemany(
            'INSERT INTO deployment_metrics (event_id, tenant, deployment, "timestamp", cpu_usage,'
            " memory_usage, bandwidth_in, bandwidth_out, requests_count, response_time_avg,"
            " error_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            data,
        )
        elapsed = time.perf_counter() - started
    return BASELINE_ROWS / elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        baseline = row_by_row(folder)
        print(f"row-by-row INSERT (baseline, {BASELINE_ROWS:,} rows): {baseline:,.0f} rows/s")
        print(f"  → {ROWS:,} rows would take {ROWS / baseline:,.0f} s")

        first, second = folder / "a.jsonl", folder / "b.jsonl"
        write_events(first, 0, ROWS)
        write_events(second, ROWS, ROWS)
        size = first.stat().st_size / 2**20
        os.sync()  # the files' write-back must not land inside a measurement

        def measure(label: str, store: Path, path: Path) -> float:
            started = time.perf_counter()
            result = import_events(store, path)
            elapsed = time.perf_counter() - started
            rate = ROWS / elapsed
            print(
                f"{label} ({size:.0f} MiB): {elapsed:.2f} s, {rate:,.0f} rows/s, "
                f"{result.imported:,} new — {rate / baseline:,.0f}× row-by-row"
                f" — target ≥ 500,000 rows/s {'✔' if rate >= 500_000 else '✘'}"
            )
            return rate

        rates = [measure(f"import into an empty store, run {k + 1}", folder / f"e{k}.duckdb", first)
                 for k in range(3)]  # fmt: skip
        print(f"  median of 3: {sorted(rates)[1]:,.0f} rows/s")
        store = folder / "e0.duckdb"
        measure("import again (all skipped)", store, first)
        measure(f"import {ROWS:,} new ids into a store holding {ROWS:,}", store, second)

        samples = [
            MetricSample(f"t{i % 250}", f"d{i % 7}", BASE + timedelta(microseconds=i),
                         cpu_usage=1.5, memory_usage=i, bandwidth_in=i, bandwidth_out=i)
            for i in range(ROWS)
        ]  # fmt: skip
        store2 = folder / "w.duckdb"
        started = time.perf_counter()
        with connect(store2) as conn:
            for k in range(0, ROWS, 10_000):
                conn.execute("BEGIN TRANSACTION")
                write_metrics(conn, samples[k : k + 10_000])
                conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
        rate = ROWS / elapsed
        print(
            f"write_metrics, batches of 10,000 (the agent's path): {elapsed:.2f} s, "
            f"{rate:,.0f} rows/s — {rate / baseline:,.0f}× row-by-row"
        )


if __name__ == "__main__":
    main()
