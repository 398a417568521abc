"""One metrics cycle over many running containers (issue 4), as a ratio to what `docker
stats` costs for the same containers, measured in the same run.

Measured: `metrics_cycle` (one listing call, cgroup and /proc/<pid>/net/dev reads, one
DuckDB transaction) over BENCH_CONTAINERS labelled busybox containers (default 100): the
first cycle (one inspect per container to learn its pid) and the steady state (mean of 5
cycles), with the agent's CPU seconds per cycle and dockerd's.
Baseline: sequential Engine API stats calls (GET /containers/ID/stats?stream=false, what
`docker stats --no-stream` does per container) for the same containers.
Target: ≥ 100×.

Run: python bench/bench_metering.py   (BENCH_CONTAINERS=20 for a quick run; needs Docker
and the local image hosting-test/busybox:latest)
"""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hosting.metering.containers import ContainerReader
from hosting.metering.engine import Engine
from hosting.metering.metrics import metrics_cycle

COUNT = int(os.environ.get("BENCH_CONTAINERS", "100"))
STATS_SAMPLE = int(os.environ.get("BENCH_STATS_SAMPLE", str(COUNT)))
IMAGE = "hosting-test/busybox:latest"


def _dockerd_cpu() -> float:
    pid = subprocess.run(["pidof", "dockerd"], capture_output=True, text=True).stdout.split()
    if not pid:
        return float("nan")
    fields = Path(f"/proc/{pid[0]}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start(tenant: str, i: int) -> str:
    return subprocess.run(
        ["docker", "run", "-d", "--name", f"{tenant}_{i}", "--label", f"hosting.tenant={tenant}",
         "--label", f"hosting.deployment=d{i}", "--label", "hosting.type=api", IMAGE,
         "sleep", "3600"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def _cycle(store: Path, reader: ContainerReader) -> tuple[float, float, float]:
    cpu0, d0, t0 = time.process_time(), _dockerd_cpu(), time.perf_counter()
    result = metrics_cycle(store, reader, None)
    wall, cpu, dcpu = time.perf_counter() - t0, time.process_time() - cpu0, _dockerd_cpu() - d0
    assert result.containers == COUNT, result
    return wall, cpu, dcpu


def main() -> None:
    tenant = f"b{secrets.token_hex(4)}"
    print(f"starting {COUNT} labelled busybox containers…")
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            ids = list(pool.map(lambda i: _start(tenant, i), range(COUNT)))
        engine = Engine()
        reader = ContainerReader(engine, frozenset({tenant}))
        with tempfile.TemporaryDirectory() as tmp:
            store = Path(tmp) / "s.duckdb"
            cold = _cycle(store, reader)
            warm = [_cycle(store, reader) for _ in range(5)]
        wall = sum(w[0] for w in warm) / len(warm)
        cpu = sum(w[1] for w in warm) / len(warm)
        dcpu = sum(w[2] for w in warm) / len(warm)
        print(f"metrics cycle, first (an inspect per container): {cold[0]:.3f} s wall, "
              f"{cold[1]:.3f} s agent CPU, {cold[2]:.2f} s dockerd CPU")  # fmt: skip
        print(f"metrics cycle, steady state (mean of 5): {wall:.3f} s wall, "
              f"{cpu:.3f} s agent CPU per cycle, {dcpu:.2f} s dockerd CPU")  # fmt: skip

        sample = ids[:STATS_SAMPLE]
        d0, started = _dockerd_cpu(), time.perf_counter()
        for cid in sample:
            engine.stats_once(cid)
        stats = (time.perf_counter() - started) * COUNT / len(sample)
        dstats = (_dockerd_cpu() - d0) * COUNT / len(sample)
        note = "" if len(sample) == COUNT else f" (measured on {len(sample)}, scaled)"
        print(f"sequential Engine API stats, {COUNT} containers (baseline): {stats:.1f} s"
              f"{note}, {dstats:.2f} s dockerd CPU")  # fmt: skip
        ratio, cold_ratio = stats / wall, stats / cold[0]
        print(f"ratio: {ratio:,.0f}× faster steady state, {cold_ratio:,.0f}× on the first cycle"
              f" — target ≥ 100× {'✔' if ratio >= 100 else '✘'}")  # fmt: skip
    finally:
        names = [f"{tenant}_{i}" for i in range(COUNT)]
        for k in range(0, COUNT, 25):
            subprocess.run(["docker", "rm", "-f", *names[k : k + 25]], capture_output=True)


if __name__ == "__main__":
    main()
