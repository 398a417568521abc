"""Validation of 1,000 tenants × 3 deployments, against plain YAML parsing of the same file.

Target (issue 2): validation itself ≤ 0.5 s on the 2-core CI machine. Prints absolute times
and the ratio to `yaml.load` with the C loader, measured in the same run.
Run: python bench/bench_validate.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import yaml

from hosting.spec import loads

TENANTS = 1_000


def generate() -> str:
    lines = [
        "version: 1",
        "platform: {name: bench, domain: apps.localhost, public_ipv4: 127.0.0.1}",
        "tenants:",
    ]
    for i in range(TENANTS):
        plan = ("free", "starter", "pro")[i % 3]
        lines += [
            f"  t{i}:",
            f"    name: Tenant {i}",
            f"    email: billing@t{i}.test",
            f"    plan: {plan}",
            f"    billing_cycle: {'yearly' if i % 4 == 0 else 'monthly'}",
            "    started: 2026-01-15",
            "    deployments:",
            "      web:",
            "        type: web",
            "        image: shop:1",
            "        port: 8080",
            "        env: {NODE_ENV: production, API_URL: '${api.url}'}",
            "        health: {path: /healthz}",
            "      api:",
            "        type: api",
            "        image: api:1",
            "        port: 3000",
            "        env: {DATABASE_URL: '${db.url}'}",
            "        secrets: {TOKEN: {env: TOKEN}}",
            "      db:",
            "        type: database",
        ]
    return "\n".join(lines) + "\n"


def best_of(fn: object, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    text = generate()
    raw = text.encode()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        plain = best_of(lambda: yaml.load(text, Loader=yaml.CSafeLoader))
        full = best_of(lambda: loads(raw, "bench.yaml", base))
    spec = loads(raw, "bench.yaml", Path("."))
    deployments = sum(len(t.deployments) for t in spec.tenants.values())
    print(f"spec: {TENANTS} tenants, {deployments} deployments, {len(raw) / 1024:.0f} KiB")
    print(f"plain YAML parse (C loader):     {plain:.3f} s  (baseline)")
    print(f"hosting load (parse+validate):   {full:.3f} s  ratio {full / plain:.1f}x")
    print(f"validation itself (load - parse): {full - plain:.3f} s  target <= 0.5 s")


if __name__ == "__main__":
    main()
