from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from hosting.provider import volume_quota
from hosting.spec import loads
from hosting.spec.models import Spec
from hosting.stacks.containers import labels
from hosting.stacks.desired import Desired, desired_containers
from hosting.stacks.settings import ProgramSettings, ensure_databases
from tests.docker_runtime.runtime import Engine, free_port

SPEC = """
version: 1
platform:
  name: {platform}
  domain: apps.test
  public_ipv4: 127.0.0.1
  images: {{proxy: "hosting-test/caddy:latest", postgres: "hosting-test/postgres:15"}}
tenants:
  alpha:
    name: Alpha
    email: a@alpha.test
    plan: starter
    started: 2026-01-01
    deployments:
      site:
        type: web
        image: hosting-test/busybox:latest
        port: 8080
        replicas: 2
        health: {{path: /healthz, interval_s: 1}}
      db:
        type: database
  beta:
    name: Beta
    email: b@beta.test
    plan: free
    started: 2026-01-01
    deployments:
      api:
        type: api
        image: hosting-test/busybox:latest
        port: 8080
        health: {{interval_s: 1}}
"""


@dataclass
class World:
    spec: Spec
    settings: ProgramSettings
    desired: Desired
    engine: Engine
    state_dir: Path


@pytest.fixture(scope="module")
def world(docker_engine: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp_path = tmp_path_factory.mktemp("world")
    platform = "t" + secrets.token_hex(4)
    spec = loads(SPEC.format(platform=platform))
    state = tmp_path / "state"
    settings = ProgramSettings(
        databases=ensure_databases(spec, {}),
        state_dir=state,
        base_dir=tmp_path,
    )
    # The databases' host ports must be free on this machine: re-pick them on loopback.
    settings = replace(
        settings,
        databases={k: replace(v, port=free_port()) for k, v in settings.databases.items()},
        edge_http_port=free_port(),
        edge_https_port=free_port(),
        edge_publish_ip="127.0.0.1",
    )
    # As apply does as root: each tenant's databases on a filesystem of its plan's storage.
    if os.geteuid() == 0:
        settings = replace(settings, volume_root=volume_quota.root_of(state))
    engine = Engine()
    try:
        for tenant in spec.tenants:
            engine.network(f"{platform}_{tenant}", labels(tenant, "", "network"))
        if settings.volume_root is not None:
            volume_quota.ensure(settings.volume_root, volume_quota.wanted(spec))
        yield World(spec, settings, desired_containers(spec, settings), engine, state)
    finally:
        engine.cleanup()
        if settings.volume_root is not None:
            volume_quota.delete(settings.volume_root)
