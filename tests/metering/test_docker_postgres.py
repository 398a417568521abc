"""Database storage on a real PostgreSQL 15: a known growth shows up."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hosting.metering.engine import Engine
from hosting.metering.storage import container_credentials, storage_cycle
from hosting.provider import volume_quota
from hosting.provider.volume_quota import TenantVolumes
from hosting.spec import load, names
from tests.conftest import require
from tests.metering.helpers import docker, remove, rows, run_labelled, unique, wait_for, write_spec

pytestmark = pytest.mark.docker
MB = 2**20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(params=["named", "bounded"])
def database(
    request: pytest.FixtureRequest, docker_engine: str, tmp_path: Path
) -> Iterator[dict[str, Any]]:
    """PostgreSQL on a plain named volume, and on one that binds its tenant's filesystem of
    bounded size, as apply makes it as root (hosting.provider.volume_quota)."""
    tenant = unique()
    volume = names.volume_name("mt", tenant, "main")
    root = tmp_path / "volumes"
    if request.param == "bounded":
        require(os.geteuid() == 0, "root (to loop-mount the database's filesystem)")
        volume_quota.ensure(root, {tenant: TenantVolumes(256 * MB, ("main",))})
        opts = volume_quota.driver_opts(str(volume_quota.device(root, tenant, "main")))
        docker("volume", "create", *(a for k, v in opts.items() for a in ("--opt", f"{k}={v}")),
               volume)  # fmt: skip
    port = _free_port()
    info = {
        "host": "127.0.0.1",
        "port": port,
        "user": "owner",
        "password": unique("pw"),
        "dbname": names.database_name("main"),
    }
    try:
        run_labelled(
            f"{tenant}_main", tenant, "main", "database",
            "-e", f"POSTGRES_PASSWORD={info['password']}", "-e", "POSTGRES_USER=owner",
            "-e", f"POSTGRES_DB={info['dbname']}", "-v", f"{volume}:/var/lib/postgresql/data",
            "-p", f"127.0.0.1:{port}:5432", "hosting-test/postgres:15",
        )  # fmt: skip
        wait_for(lambda: _connects(info), timeout=90, every=0.5)
        yield {"tenant": tenant, "info": info, "device": volume_quota.device(root, tenant, "main")}
    finally:
        remove([f"{tenant}_main"])
        docker("volume", "rm", volume, check=False)
        volume_quota.delete(root)


def _connects(info: dict[str, Any]) -> bool:
    try:
        with psycopg.connect(**info, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _database_bytes(store: Path, tenant: str) -> int:
    found = rows(
        store,
        "SELECT size_bytes FROM deployment_storage WHERE tenant = ? AND storage_type = 'database'"
        " ORDER BY last_calculated DESC, event_id DESC LIMIT 1",
        [tenant],
    )
    assert found, "no database measurement"
    return int(found[0][0])


def test_a_database_grown_by_a_known_amount(database: dict[str, Any], tmp_path: Path) -> None:
    tenant, info = database["tenant"], database["info"]
    spec = load(write_spec(tmp_path, {tenant: {"main": {"type": "database"}}}))
    store = tmp_path / "s.duckdb"
    engine = Engine()
    storage_cycle(store, engine, spec, spec_dir=tmp_path, credentials=lambda t, d: info)
    before = _database_bytes(store, tenant)
    with psycopg.connect(**info) as conn:
        lsn_before = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        conn.execute(
            "CREATE TABLE grown AS SELECT g AS id, md5(g::text) || repeat('x', 968) AS pad"
            " FROM generate_series(1, 40000) g"
        )
        conn.execute("CHECKPOINT")
        start = lsn_before[0] if lsn_before else "0/0"
        start = start.decode() if isinstance(start, bytes) else start  # SQL_ASCII cluster
        row = conn.execute(
            "SELECT pg_total_relation_size('grown'),"
            f" pg_wal_lsn_diff(pg_current_wal_lsn(), '{start}'::pg_lsn)"
        ).fetchone()
    assert row is not None
    grown, wal = int(row[0]), int(row[1])
    assert grown > 30 * MB  # the known amount, as PostgreSQL itself counts it
    later = storage_cycle(store, engine, spec, spec_dir=tmp_path, credentials=lambda t, d: info)
    assert not later.errors
    after = _database_bytes(store, tenant)
    # The table shows up in full; beyond it only the WAL it wrote (in 16 MB segments).
    assert grown <= after - before <= grown + wal + 2 * 16 * MB


def test_the_cluster_files_are_counted_where_the_database_writes_them(
    database: dict[str, Any], tmp_path: Path
) -> None:
    """Through the volume's mount in the container (the bound filesystem's, when bounded): an
    empty directory there would count no file, and only pg_database_size would be billed."""
    tenant, info = database["tenant"], database["info"]
    spec = load(write_spec(tmp_path, {tenant: {"main": {"type": "database"}}}))
    result = storage_cycle(
        tmp_path / "s.duckdb", Engine(), spec, spec_dir=tmp_path, credentials=lambda t, d: info
    )
    assert not result.errors
    [sample] = [s for s in result.measured if s.storage_type == "database"]
    files = sample.file_count
    assert files is not None and files > 500  # PostgreSQL 15's initdb writes about 1000
    device = database["device"]
    if device.is_dir():  # bounded: the files are in the tenant's filesystem, not Docker's
        found = subprocess.run(["find", str(device), "-type", "f"], capture_output=True, text=True)
        assert abs(len(found.stdout.splitlines()) - files) < 50


def test_the_container_is_measured_on_its_own_socket_with_no_password(
    database: dict[str, Any], tmp_path: Path
) -> None:
    """What the server answers over TCP with the password, it answers inside the container
    without one: a password retired by `secrets rotate` cannot stop the metering."""
    from hosting.metering.storage import database_size

    tenant, info = database["tenant"], database["info"]
    found = container_credentials(Engine())(tenant, "main")
    assert found is not None and "password" not in found
    assert found["user"] == info["user"]
    with psycopg.connect(**info, connect_timeout=10) as conn:
        row = conn.execute(
            "SELECT pg_database_size(%s), (SELECT sum(pg_database_size(datname))::bigint"
            " FROM pg_database WHERE datallowconn)",
            [info["dbname"]],
        ).fetchone()
    assert row is not None
    assert database_size(found, info["dbname"]) == (row[0], row[1])


def test_a_missing_database_is_a_metering_error_not_a_crash(
    database: dict[str, Any], tmp_path: Path
) -> None:
    from hosting.errors import MeteringError
    from hosting.metering.storage import database_size

    info = {k: v for k, v in database["info"].items() if k != "dbname"}
    with pytest.raises(MeteringError, match="db_dropped") as raised:
        database_size({**info, "dbname": "postgres"}, "db_dropped")
    assert info["password"] not in str(raised.value)
