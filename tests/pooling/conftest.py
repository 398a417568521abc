"""A database with `pooling:` on the real engine: the server (max_connections = 50) and its
PgBouncer, started from the same typed container specs the program declares, on a tenant
network of their own."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg
import pytest

from hosting.provider.poolers import sync_verifiers
from hosting.spec import loads, names
from hosting.spec.models import Spec
from hosting.stacks.containers import ContainerSpec, labels, write_host_files
from hosting.stacks.desired import desired_containers
from hosting.stacks.pooler import POOLER_PORT, pooled_verifier
from hosting.stacks.settings import DatabaseAccess, ProgramSettings, ensure_databases
from tests.conftest import require
from tests.docker_runtime.runtime import Engine, free_port

SPEC = """
version: 1
platform:
  name: {platform}
  domain: apps.test
  public_ipv4: 127.0.0.1
  images: {{postgres: "hosting-test/postgres:15", pgbouncer: "{image}"}}
tenants:
  acme:
    name: Acme
    email: a@acme.test
    plan: starter
    started: 2026-01-01
    deployments:
      main:
        type: database
        pooling: {{max_client_conn: 520}}
"""
SERVER_MAX_CONNECTIONS = 50
IMAGE = "hosting-test/pgbouncer:latest"


@dataclass
class Pooled:
    spec: Spec
    access: DatabaseAccess
    server: ContainerSpec
    pooler: ContainerSpec
    verifier: str
    engine: Engine
    state_dir: Path
    login_error_before_sync: str | None = None

    def address(self, name: str) -> str:
        nets = self.engine.inspect(name)["NetworkSettings"]["Networks"]
        return str(next(iter(nets.values()))["IPAddress"])


def _login_error(pooled: Pooled) -> str | None:
    try:
        psycopg.connect(
            host=pooled.address(pooled.pooler.name),
            port=POOLER_PORT,
            user=pooled.access.login,
            password=pooled.access.current_password,
            dbname=names.database_name("main"),
            connect_timeout=30,
        ).close()
    except psycopg.OperationalError as exc:
        return str(exc)
    return None


@pytest.fixture(scope="module")
def pooled(docker_engine: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pooled]:
    found = subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True)
    require(found.returncode == 0, f"the local image {IMAGE} (bash .ci/images.sh)")
    tmp_path = tmp_path_factory.mktemp("pooling")
    platform = "p" + secrets.token_hex(4)
    spec = loads(SPEC.format(platform=platform, image=IMAGE))
    state = tmp_path / "state"
    databases = ensure_databases(spec, {})
    databases = {k: replace(v, port=free_port()) for k, v in databases.items()}
    settings = ProgramSettings(databases=databases, state_dir=state, base_dir=tmp_path)
    desired = desired_containers(spec, settings)
    server = desired.databases[("acme", "main")]
    assert server is not None
    # The server's connection limit, well under the clients the pooler takes.
    limit = ("-c", f"max_connections={SERVER_MAX_CONNECTIONS}")
    server = replace(server, command=(*(server.command or ()), *limit))
    pooler = desired.poolers[("acme", "main")]
    access = databases["acme/main"]
    engine = Engine()
    try:
        engine.network(f"{platform}_acme", labels("acme", "", "network"))
        write_host_files(server)  # as apply does before the engine runs
        engine.start(server)
        engine.wait_healthy(server.name)
        write_host_files(pooler)  # a bind mount's source must exist when the container is made
        engine.start(pooler)
        engine.wait_healthy(pooler.name)
        pooled = Pooled(spec, access, server, pooler, "", engine, state)
        # Before apply's last step the server holds a verifier of its own (another salt):
        # the pooler's pass-through cannot log in with the client's proof.
        before = _login_error(pooled)
        warnings = sync_verifiers(spec, settings)  # what apply does after the engine's up
        assert warnings == []
        pooled.verifier = pooled_verifier("acme/main", access.current_password)
        pooled.login_error_before_sync = before
        yield pooled
    finally:
        engine.cleanup()
