"""When the network rate cannot be set at all: said, and nothing attempted. The shaping itself
is measured on real containers in tests/docker_runtime/test_network_rate.py."""

from __future__ import annotations

import os

import pytest

from hosting.metering.engine import Engine
from hosting.provider import netshape
from hosting.spec import loads
from hosting.spec.models import Spec

SPEC = """
version: 1
platform:
  name: p
  domain: apps.test
  public_ipv4: 127.0.0.1
  docker: {{host: "{host}"}}
tenants:
  acme:
    name: Acme
    email: a@acme.test
    plan: free
    started: 2026-01-01
    deployments:
      site: {{type: web, image: "hosting-test/busybox:latest", port: 8080}}
"""


def spec_on(host: str) -> Spec:
    return loads(SPEC.format(host=host))


def test_a_remote_engine_is_not_shaped_and_apply_says_so() -> None:
    # Nothing listens on port 9: a call to the engine would raise, not skip.
    spec = spec_on("tcp://127.0.0.1:9")
    assert netshape.reconcile(spec).skipped == "the engine is on another host"
    assert netshape.enforce(spec) == [
        "the plans' network rates are not enforced: the engine is on another host"
        " (run apply as root)"
    ]


def test_without_root_nothing_is_attempted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    spec = spec_on("unix:///nonexistent/docker.sock")
    report = netshape.reconcile(spec, Engine("unix:///nonexistent/docker.sock"))
    assert report.skipped == "tc needs root (CAP_NET_ADMIN)"
    assert report.shaped == {} and report.removed == []


def test_the_bucket_holds_ten_milliseconds_and_never_less_than_64_kib() -> None:
    assert netshape.burst_bytes(10) == 65536  # 12 500 bytes in 10 ms: the floor
    assert netshape.burst_bytes(100) == 125_000
    assert netshape.burst_bytes(500) == 625_000
