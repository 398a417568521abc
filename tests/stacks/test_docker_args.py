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
