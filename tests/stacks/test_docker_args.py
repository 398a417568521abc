"""The spellings the docker provider reads back: anything else is a diff on every plan."""

from __future__ import annotations

import pytest

from hosting.stacks.docker_args import canonical_caps, canonical_cpus


@pytest.mark.parametrize(
    ("cpus", "spelled"),
    # NanoCpus → the provider's decimal string, worked by hand from its helper: nine decimals,
    # "X.0" when exactly nine zeros remain, else trailing zeros trimmed (so 10 → "10.").
    [(2, "2.0"), (1, "1.0"), (0.5, "0.5"), (1.5, "1.5"), (0.25, "0.25"), (10, "10."), (4, "4.0")],
)
def test_cpus_are_spelled_as_the_provider_reads_them(cpus: float, spelled: str) -> None:
    assert canonical_cpus(cpus) == spelled


def test_capabilities_carry_docker_s_cap_prefix() -> None:
    assert canonical_caps(("ALL",)) == ["ALL"]
    assert canonical_caps(("CHOWN", "CAP_SETUID")) == ["CAP_CHOWN", "CAP_SETUID"]


def test_a_plan_s_cores_are_held_to_the_engine_s() -> None:
    from hosting.spec import loads
    from hosting.stacks.desired import desired_containers
    from hosting.stacks.settings import ProgramSettings, ensure_databases

    spec = loads(
        """
version: 1
platform: {name: p, domain: apps.test, public_ipv4: 127.0.0.1}
tenants:
  big:
    name: Big
    email: b@big.test
    plan: enterprise
    started: 2026-01-01
    limits: {cpus: 4, memory_mb: 1024, disk_io_mbps: 100, network_mbps: 100}
    deployments:
      site: {type: web, image: hosting-test/busybox:latest, port: 8080}
"""
    )
    for host, expected in ((2.0, 2.0), (8.0, 4.0), (None, 4.0)):
        settings = ProgramSettings(databases=ensure_databases(spec, {}), host_cpus=host)
        [site] = desired_containers(spec, settings).apps[("big", "site")]
        assert site.cpus == expected, host
