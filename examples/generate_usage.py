"""Write realistic usage events (SPEC.md section 4) for the example hosting.yaml.

Ninety days of samples every six hours for each web and API deployment and daily storage
measurements for every deployment, deterministic (seeded), so the demo's invoices and
reports are the same on every machine. Usage: python examples/generate_usage.py OUT.jsonl
"""

from __future__ import annotations

import json
import math
import random
import sys
from datetime import UTC, datetime, timedelta

GB = 2**30
START = datetime(2026, 8, 27, tzinfo=UTC)
DAYS = 90

# deployment -> (kind, base requests per 6 h, outbound bytes per request, storage by type in GB)
DEPLOYMENTS: dict[str, tuple[str, int, int, dict[str, float]]] = {
    "acme/shop": ("web", 40_000, 20_000, {"code": 0.4, "static": 6.0, "logs": 1.5}),
    "acme/api": ("api", 25_000, 4_000, {"code": 0.3, "logs": 1.2}),
    "acme/main": ("database", 0, 0, {"database": 5.0}),
    "acme/docs": ("web", 5_000, 30_000, {"static": 0.2}),
    "globex/portal": ("web", 90_000, 15_000, {"code": 0.5, "static": 3.0, "logs": 1.0}),
    "globex/orders": ("database", 0, 0, {"database": 14.0}),
    # initech's photos fill its free plan's 1 GB: the demo shows can-deploy refusing it.
    "initech/blog": ("web", 300, 40_000, {"code": 0.1, "static": 0.95}),
    "umbrella/records": ("api", 120_000, 30_000, {"code": 0.6, "logs": 6.0, "cache": 2.0}),
    "umbrella/ledger": ("database", 0, 0, {"database": 150.0}),
}


def events() -> list[dict[str, object]]:
    rng = random.Random(20261125)
    out: list[dict[str, object]] = []
    n = 0

    def add(dep: str, when: datetime, metric: str, value: float, **extra: object) -> None:
        nonlocal n
        n += 1
        out.append(
            {
                "id": f"demo-{n:06d}",
                "deployment": dep,
                "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "metric": metric,
                "value": round(value, 3) if isinstance(value, float) else value,
                **extra,
            }
        )

    for dep, (kind, base_requests, bytes_per_request, storage) in DEPLOYMENTS.items():
        for step in range(DAYS * 4):
            when = START + timedelta(hours=6 * step)
            # initech/blog is `stopped: true`: it served traffic for its first ten days only.
            if kind != "database" and (not dep.startswith("initech") or step < 40):
                daily = 1 + 0.5 * math.sin(2 * math.pi * (step % 4) / 4)
                growth = 1 + step / (DAYS * 4)
                requests = int(base_requests * daily * growth * rng.uniform(0.8, 1.2))
                add(dep, when, "requests_count", requests)
                add(dep, when, "error_count", int(requests * rng.uniform(0, 0.01)))
                add(dep, when, "response_time_avg", rng.uniform(20, 90) * daily)
                add(dep, when, "bandwidth_out", requests * bytes_per_request)
                add(dep, when, "bandwidth_in", requests * 900)
            add(dep, when, "cpu_usage", rng.uniform(2, 45 if kind != "database" else 20))
            add(dep, when, "memory_usage", int(rng.uniform(80, 400) * 2**20))
        for day in range(DAYS):
            when = START + timedelta(days=day, hours=3)
            for storage_type, gb in storage.items():
                grow = 1 + 0.6 * day / DAYS if storage_type in ("database", "logs") else 1
                add(dep, when, "storage", int(gb * grow * GB), storage_type=storage_type)
    return out


def main() -> None:
    target = sys.argv[1] if len(sys.argv) > 1 else "usage.jsonl"
    with open(target, "w") as fh:
        for event in events():
            fh.write(json.dumps(event) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
