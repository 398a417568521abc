"""How fast the CLI starts (issue 14): CI runs it many times per job.

Each command runs as a fresh process, as CI runs it; the runs of all commands are interleaved
so that a busy moment on this shared machine hits them alike, and the best of BENCH_RUNS
(default 15) counts, with the median beside it. The CPU time (user + system, median) is
printed too: on a loaded machine it moves much less than the wall clock.
Baseline: `python -c 'import pydantic, yaml, click'`, the floor for a pydantic + YAML + click
tool. Targets: `hosting --help` ≤ 1.5× and `hosting validate` of the example ≤ 2.5×.
For scale, also: importing every command module, which is what `--help` did before the
commands were loaded lazily.
Run: python bench/bench_cli.py
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_RUNS", "15"))

BASELINE = [sys.executable, "-c", "import pydantic, yaml, click"]
MEASURES: list[tuple[str, list[str], float | None]] = [
    ("hosting --help", [sys.executable, "-m", "hosting", "--help"], 1.5),
    (
        "hosting validate (example)",
        [sys.executable, "-m", "hosting", "-f", str(REPO / "hosting.yaml"), "validate"],
        2.5,
    ),
    (
        "every command module imported",
        [sys.executable, "-c", "from hosting.cli import cli; cli.load_all()"],
        None,
    ),
]


def cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def run(argv: list[str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one run."""
    start, start_cpu = time.perf_counter(), cpu()
    done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr}")
    return elapsed, cpu() - start_cpu


def main() -> None:
    commands = [("baseline", BASELINE, None), *MEASURES]
    times: dict[str, list[float]] = {name: [] for name, _, _ in commands}
    cpus: dict[str, list[float]] = {name: [] for name, _, _ in commands}
    for argv in (BASELINE, *(m[1] for m in MEASURES)):
        run(argv)  # warm the file cache and the .pyc files
    for _ in range(RUNS):
        for name, argv, _ in commands:
            wall, used = run(argv)
            times[name].append(wall)
            cpus[name].append(used)
    floor = min(times["baseline"])
    floor_median = statistics.median(times["baseline"])
    floor_cpu = statistics.median(cpus["baseline"])
    print(f"{RUNS} runs each, interleaved; wall best (median), CPU median; load {load()}")
    print(
        f"{'import pydantic, yaml, click (baseline)':<40} {floor:6.3f} s "
        f"({floor_median:.3f} s)  1.0×  CPU {floor_cpu:.3f} s"
    )
    for name, _, target in MEASURES:
        best, median = min(times[name]), statistics.median(times[name])
        used = statistics.median(cpus[name])
        ratio = best / floor
        verdict = (
            "" if target is None else f"  target ≤ {target}× {'✔' if ratio <= target else '✘'}"
        )
        print(
            f"{name:<40} {best:6.3f} s ({median:.3f} s)  {ratio:.2f}× "
            f"(median {median / floor_median:.2f}×)  CPU {used:.3f} s {used / floor_cpu:.2f}×"
            f"{verdict}"
        )


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
