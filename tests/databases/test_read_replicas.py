"""Read replicas on a real PostgreSQL 15, started from the container specs apply declares
(hosting.stacks.desired) and fed by what apply runs on the primary after (prepare_primary)."""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hosting.databases.local import run_shell, run_sql
from hosting.databases.replication import prepare_primary, read_alias, replica_states
from hosting.errors import ProviderError
from hosting.provider import volume_quota
from hosting.spec import loads, names
from hosting.stacks.containers import ContainerSpec, labels
from hosting.stacks.desired import desired_containers
from hosting.stacks.settings import DatabaseAccess, ProgramSettings, ensure_databases
from tests.conftest import run_hosting
from tests.docker_runtime.runtime import Engine, docker, free_port

pytestmark = pytest.mark.docker
DOCKER = "unix:///var/run/docker.sock"

SPEC = """
version: 1
platform:
  name: {platform}
  domain: apps.test
  public_ipv4: 127.0.0.1
  images: {{postgres: "hosting-test/postgres:15"}}
tenants:
  acme:
    name: Acme
    email: a@acme.test
    plan: pro
    started: 2026-01-01
    deployments:
      main: {{type: database, replicas: 2}}
"""


@dataclass
class Cluster:
    folder: Path  # hosting.yaml of the cluster, for the CLI
    platform: str
    access: DatabaseAccess
    primary: ContainerSpec
    replicas: list[ContainerSpec]
    engine: Engine


@pytest.fixture(scope="module")
def cluster(docker_engine: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    platform = "r" + secrets.token_hex(4)
    folder = tmp_path_factory.mktemp("project")
    (folder / "hosting.yaml").write_text(SPEC.format(platform=platform))
    spec = loads(SPEC.format(platform=platform))
    state = tmp_path_factory.mktemp("state")
    settings = ProgramSettings(databases=ensure_databases(spec, {}), state_dir=state)
    settings = replace(
        settings, databases={k: replace(v, port=free_port()) for k, v in settings.databases.items()}
    )
    if os.geteuid() == 0:  # as apply does as root: on the tenant's bounded filesystem
        settings = replace(settings, volume_root=volume_quota.root_of(state))
        volume_quota.ensure(settings.volume_root, volume_quota.wanted(spec))  # type: ignore[arg-type]
    desired = desired_containers(spec, settings)
    engine = Engine()
    try:
        engine.network(names.network_name(platform, "acme"), labels("acme", "", "network"))
        primary = desired.databases[("acme", "main")]
        assert primary is not None
        engine.start(primary)
        engine.wait_healthy(primary.name)
        access = settings.databases["acme/main"]
        assert access.replication_password is not None
        replicas = desired.read_replicas[("acme", "main")]
        for standby in replicas:  # they wait for the primary to be fed
            engine.start(standby)
        prepare_primary(
            DOCKER, primary.name, access.user, "db_main", access.replication_password, 2
        )
        for standby in replicas:
            engine.wait_healthy(standby.name, timeout=120)
        yield Cluster(folder, platform, access, primary, replicas, engine)
    finally:
        engine.cleanup()
        if settings.volume_root is not None:
            volume_quota.delete(settings.volume_root)


def _primary(cluster: Cluster) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": cluster.access.port,
        "user": cluster.access.user,
        "password": cluster.access.password,
        "dbname": "db_main",
    }


def _on(container: str, sql: str, user: str) -> str:
    return run_sql(DOCKER, container, user, "db_main", sql).strip()


def test_a_write_on_the_primary_is_read_on_each_replica(cluster: Cluster) -> None:
    owner = cluster.access.user
    with psycopg.connect(**_primary(cluster), autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (body text)")
        conn.execute("INSERT INTO notes VALUES ('written on the primary')")
    for standby in cluster.replicas:
        assert _on(standby.name, "SELECT pg_is_in_recovery()", owner) == "t"
        deadline = time.monotonic() + 30
        while True:
            try:
                if _on(standby.name, "SELECT body FROM notes", owner) == "written on the primary":
                    break
            except ProviderError:  # the table has not arrived yet
                pass
            assert time.monotonic() < deadline, f"{standby.name} never got the row"
            time.sleep(0.2)
        # A standby refuses writes.
        with pytest.raises(ProviderError, match="read-only transaction"):
            _on(standby.name, "INSERT INTO notes VALUES ('on a replica')", owner)
    states = replica_states(DOCKER, cluster.primary.name, owner, "db_main")
    assert [(s.name, s.streaming) for s in states] == [("replica_1", True), ("replica_2", True)]
    assert all(s.lag_bytes is not None and s.lag_bytes >= 0 for s in states)


def test_the_read_alias_names_every_replica(cluster: Cluster) -> None:
    alias = read_alias(cluster.platform, "acme", "main")
    network = names.network_name(cluster.platform, "acme")
    found = set(run_shell(DOCKER, cluster.primary.name, 'getent ahostsv4 "$1"', alias).split())
    ips = {
        cluster.engine.inspect(s.name)["NetworkSettings"]["Networks"][network]["IPAddress"]
        for s in cluster.replicas
    }
    assert len(ips) == 2 and ips <= found


def test_the_replication_password_is_in_no_file_label_or_log(cluster: Cluster) -> None:
    secret = cluster.access.replication_password
    assert secret is not None
    for c in (cluster.primary, *cluster.replicas):
        info = cluster.engine.inspect(c.name)
        assert secret not in str(info["Config"].get("Labels"))
        assert secret not in docker("logs", c.name, check=False)
    for standby in cluster.replicas:
        hits = run_shell(
            DOCKER, standby.name, 'grep -rlF -- "$1" "$PGDATA" || true', secret
        ).strip()
        assert hits == ""


def test_a_replica_stays_readable_when_the_primary_stops(cluster: Cluster) -> None:
    owner = cluster.access.user
    with psycopg.connect(**_primary(cluster), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS notes (body text)")
        conn.execute("INSERT INTO notes VALUES ('before the stop')")
    time.sleep(2)
    docker("stop", cluster.primary.name)
    try:
        for standby in cluster.replicas:
            count = _on(standby.name, "SELECT count(*) FROM notes WHERE body = 'before the stop'",
                        owner)  # fmt: skip
            assert count == "1"
    finally:
        docker("start", cluster.primary.name)
        cluster.engine.wait_healthy(cluster.primary.name)


def test_status_shows_each_replica_and_its_lag(cluster: Cluster) -> None:
    out = run_hosting("status", "--json", cwd=cluster.folder)
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    states = {(r["replica"], r["state"]) for r in shown["replication"]}
    assert states == {("replica_1", "streaming"), ("replica_2", "streaming")}
    assert all(r["lag_bytes"] is not None for r in shown["replication"])
    [row] = [d for d in shown["deployments"] if d["deployment"] == "main"]
    assert (row["replicas_running"], row["replicas_wanted"]) == (3, 3)


def test_promote_makes_one_replica_writable_and_leaves_the_other(cluster: Cluster) -> None:
    owner = cluster.access.user
    refused = run_hosting("db", "promote", "acme/main", "--replica", "2", cwd=cluster.folder)
    assert refused.returncode != 0 and "--yes" in refused.stderr
    assert _on(cluster.replicas[1].name, "SELECT pg_is_in_recovery()", owner) == "t"
    out = run_hosting("db", "promote", "acme/main", "--replica", "2", "--yes", cwd=cluster.folder)
    assert out.returncode == 0, out.stderr
    assert _on(cluster.replicas[1].name, "SELECT pg_is_in_recovery()", owner) == "f"
    _on(cluster.replicas[1].name, "CREATE TABLE after_promotion (id int)", owner)
    assert _on(cluster.replicas[0].name, "SELECT pg_is_in_recovery()", owner) == "t"
    again = run_hosting("db", "promote", "acme/main", "--replica", "2", "--yes", cwd=cluster.folder)
    assert again.returncode != 0 and "already a read-write server" in again.stderr
    none = run_hosting("db", "promote", "acme/main", "--replica", "3", "--yes", cwd=cluster.folder)
    assert none.returncode != 0 and "no replica 3" in none.stderr


def test_feeding_the_primary_for_fewer_replicas_drops_the_others_slots(cluster: Cluster) -> None:
    """After the promotion above replica 2 follows no one; declared away, its slot goes (a
    kept slot would hold WAL on the primary for good). Replica 1 keeps streaming."""
    owner, secret = cluster.access.user, cluster.access.replication_password
    assert secret is not None
    prepare_primary(DOCKER, cluster.primary.name, owner, "db_main", secret, 1)
    states = replica_states(DOCKER, cluster.primary.name, owner, "db_main")
    assert [(s.name, s.streaming) for s in states] == [("replica_1", True)]
    prepare_primary(DOCKER, cluster.primary.name, owner, "db_main", secret, 0)
    assert replica_states(DOCKER, cluster.primary.name, owner, "db_main") == []
