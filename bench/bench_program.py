"""Program construction for 100 and 1,000 deployments under pulumi mocks.

Prints each time and the ratio against the 100-deployment baseline measured in the same run
(linear growth means a ratio near 10). Target: 1,000 deployments in at most 5 s.
Run: python bench/bench_program.py
"""

from __future__ import annotations

import time
from datetime import date

from hosting.spec.models import Spec
from hosting.spec.plans import DEFAULT_PLANS
from hosting.stacks.mocked import run_mocked
from hosting.stacks.settings import default_settings

PER_TENANT = 10  # 4 web (one with 2 replicas), 3 api, 3 database


def make_spec(deployments: int) -> Spec:
    tenants = {}
    for t in range(deployments // PER_TENANT):
        deps: dict[str, object] = {}
        for i in range(PER_TENANT):
            if i < 4:
                deps[f"web{i}"] = {
                    "type": "web",
                    "image": "hosting-demo/web:latest",
                    "port": 8080,
                    "replicas": 2 if i == 0 else 1,
                    "env": {"API": "${api4.url}"},
                }
            elif i < 7:
                deps[f"api{i}"] = {
                    "type": "api",
                    "image": "hosting-demo/api:latest",
                    "port": 8080,
                    "env": {"DATABASE_URL": "${db7.url}"},
                }
            else:
                deps[f"db{i}"] = {"type": "database"}
        tenants[f"t{t:04d}"] = {
            "name": f"Tenant {t}",
            "email": f"t{t}@example.test",
            "plan": "enterprise",
            "started": date(2026, 1, 1),
            "limits": {"cpus": 2, "memory_mb": 2048, "disk_io_mbps": 100, "network_mbps": 100},
            "deployments": deps,
        }
    return Spec.model_validate(
        {
            "version": 1,
            "platform": {"name": "bench", "domain": "apps.test", "public_ipv4": "127.0.0.1"},
            "plans": {k: v.model_dump() for k, v in DEFAULT_PLANS.items()},
            "tenants": tenants,
        }
    )


def measure(deployments: int) -> tuple[float, int]:
    spec = make_spec(deployments)
    settings = default_settings(spec)
    started = time.perf_counter()
    resources = run_mocked(spec, settings)
    return time.perf_counter() - started, len(resources)


def sdk_floor(resources: int) -> float:
    """The Pulumi SDK alone: as many bare networks as the program declares resources."""
    import pulumi
    import pulumi_docker as docker

    from hosting.stacks.mocked import _Mocks

    pulumi.runtime.set_mocks(_Mocks(), project="bench", stack="floor", preview=False)

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def go() -> None:
        for i in range(resources):
            docker.Network(f"n{i}", name=f"n{i}")

    from hosting.stacks.build import paused_gc

    started = time.perf_counter()
    with paused_gc():  # the same conditions as run_mocked
        go()
    return time.perf_counter() - started


def main() -> None:
    measure(20)  # warm imports and the mock runtime
    base, base_n = measure(100)
    big, big_n = measure(1000)
    floor = sdk_floor(big_n)
    print(f"baseline   100 deployments: {base:6.2f} s ({base_n} resources)")
    print(f"          1000 deployments: {big:6.2f} s ({big_n} resources)")
    print(f"ratio 1000/100: {big / base:.1f}x (linear = 10x)")
    print(f"SDK floor, {big_n} bare resources: {floor:6.2f} s (program = {big / floor:.1f}x floor)")
    print(f"target <= 5 s for 1000: {'met' if big <= 5 else 'NOT met'}")


if __name__ == "__main__":
    main()
