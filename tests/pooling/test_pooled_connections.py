"""500 clients at once through PgBouncer, against a server that takes 50 (issue 12)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from hosting.databases.local import run_sql
from hosting.spec import names
from hosting.stacks.pooler import POOLER_PORT
from tests.pooling.conftest import SERVER_MAX_CONNECTIONS, Pooled

pytestmark = pytest.mark.docker

CLIENTS = 500


def _hold_together(pooled: Pooled, host: str, port: int) -> list[object]:
    """CLIENTS connections, all open at the same time, each running one transaction while
    all the others are connected; each result is (backend pid, number) or the exception."""
    everyone_connected = threading.Barrier(CLIENTS, timeout=240)
    dsn = psycopg.conninfo.make_conninfo(
        host=host,
        port=port,
        user=pooled.access.login,
        password=pooled.access.current_password,
        dbname=names.database_name("main"),
        connect_timeout=120,
    )

    def client(n: int) -> object:
        conn = None
        try:
            conn = psycopg.connect(dsn, autocommit=False)
        except psycopg.Error as exc:
            everyone_connected.abort()  # no point waiting for all of them
            return exc
        try:
            everyone_connected.wait()
            with conn.transaction():
                row = conn.execute("SELECT pg_backend_pid(), %s::int * 2", [n]).fetchone()
            return row
        except (psycopg.Error, threading.BrokenBarrierError) as exc:
            return exc
        finally:
            conn.close()

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        return list(pool.map(client, range(CLIENTS)))


def test_500_clients_through_the_pooler_all_succeed(pooled: Pooled) -> None:
    results = _hold_together(pooled, pooled.address(pooled.pooler.name), POOLER_PORT)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, f"{len(failures)} of {CLIENTS} failed, first: {failures[0]!r}"
    assert [r[1] for r in results] == [2 * n for n in range(CLIENTS)]  # type: ignore[index]
    # They shared the pool's server connections: far fewer backends than clients.
    backends = {r[0] for r in results}  # type: ignore[index]
    assert len(backends) <= 20, backends


def test_the_same_500_clients_straight_to_the_server_are_refused(pooled: Pooled) -> None:
    """The control: without the pooler, the server's limit turns most of them away, so the
    test above proves the pooler, not a lenient server."""
    results = _hold_together(pooled, pooled.address(pooled.server.name), 5432)
    refused = [r for r in results if isinstance(r, psycopg.OperationalError)]
    assert refused, "the server took 500 connections: max_connections did not apply"
    assert any("too many clients" in str(r) for r in refused), refused[0]
    limit = run_sql(
        "unix:///var/run/docker.sock",
        pooled.server.name,
        pooled.access.user,
        "postgres",
        "SHOW max_connections",
    )
    assert limit.strip() == str(SERVER_MAX_CONNECTIONS)


def test_show_pools_counts_clients_waiting_and_servers(pooled: Pooled) -> None:
    """The metering agent's reading, while 30 clients hold a transaction open each on a
    pool of 20 server connections: 20 active, 10 waiting."""
    from hosting.metering.poolstats import read_pools

    dsn = psycopg.conninfo.make_conninfo(
        host=pooled.address(pooled.pooler.name),
        port=POOLER_PORT,
        user=pooled.access.login,
        password=pooled.access.current_password,
        dbname=names.database_name("main"),
        connect_timeout=60,
    )
    holders = [psycopg.connect(dsn) for _ in range(20)]
    waiters: list[psycopg.Connection[tuple[object, ...]]] = []
    try:
        for conn in holders:  # each takes a server connection until its transaction ends
            conn.execute("SELECT 1")
        started = threading.Event()

        def wait_for_a_server() -> None:
            conn = psycopg.connect(dsn)
            waiters.append(conn)
            started.set()
            conn.execute("SELECT 1")  # blocks in the pooler's queue until one is free

        threads = [threading.Thread(target=wait_for_a_server) for _ in range(10)]
        for t in threads:
            t.start()
        stats = None
        for _ in range(100):  # until all ten are queued
            stats = read_pools("unix:///var/run/docker.sock", pooled.pooler.name)
            if stats is not None and stats.waiting == 10:
                break
            threading.Event().wait(0.2)
        assert stats is not None
        assert (stats.clients, stats.waiting, stats.servers) == (30, 10, 20)
    finally:
        for conn in holders:
            conn.rollback()  # frees the servers: the waiters get theirs and finish
        for t in threads:
            t.join(timeout=60)
        for conn in [*holders, *waiters]:
            conn.close()


def test_the_metrics_cycle_records_the_poolers_counts(pooled: Pooled, tmp_path: Path) -> None:
    """The agent's own cycle on the real engine: the pooled database's sample carries what
    SHOW POOLS said, here one client holding a server connection in a transaction."""
    from hosting.metering.containers import ContainerReader
    from hosting.metering.engine import Engine
    from hosting.metering.metrics import metrics_cycle
    from tests.metering.helpers import rows

    dsn = psycopg.conninfo.make_conninfo(
        host=pooled.address(pooled.pooler.name),
        port=POOLER_PORT,
        user=pooled.access.login,
        password=pooled.access.current_password,
        dbname=names.database_name("main"),
        connect_timeout=60,
    )
    store = tmp_path / "s.duckdb"
    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT 1")  # a transaction left open: one active client, one server
        metrics_cycle(store, ContainerReader(Engine(), frozenset({"acme"})), pooled.spec)
    found = rows(
        store,
        "SELECT pool_clients, pool_waiting, pool_servers, memory_usage FROM deployment_metrics"
        " WHERE tenant = 'acme' AND deployment = 'main'",
    )
    assert len(found) == 1
    clients, waiting, servers, memory = found[0]
    assert (clients, waiting) == (1, 0)
    assert servers >= 1  # the active one, plus any the pool kept idle from earlier tests
    assert memory > 0  # the server's and the pooler's containers, counted for the database
