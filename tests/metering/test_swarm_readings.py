"""Metering a swarm's nodes (issue 11), without a swarm: the Engine API's stats as counters,
a node that does not answer, and the autoscaler's samples after a scale event.

The swarm itself is in tests/swarm/test_metering_on_swarm.py.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from hosting.metering.autoscale import recent_cpu
from hosting.metering.cgroups import Counters
from hosting.metering.containers import ContainerReader, Reading, counters_from_stats
from hosting.metering.engine import Container, Engine, EngineUnreachable
from hosting.metering.metrics import metrics_cycle
from hosting.metering.nodes import SwarmReader
from hosting.store import connect
from tests.metering.helpers import remove, rows, run_labelled, unique

# The parts of a real `GET /containers/ID/stats?stream=false&one-shot=true` answer (Docker
# 20.10, cgroup v1, a busy busybox task on a swarm worker) that the counters come from.
STATS_V1 = {
    "read": "2026-11-30T01:39:45.908813461Z",
    "preread": "0001-01-01T00:00:00Z",
    "cpu_stats": {"cpu_usage": {"total_usage": 1732049237}, "online_cpus": 2},
    "precpu_stats": {"cpu_usage": {"total_usage": 0}},
    "memory_stats": {
        "usage": 577536,
        "stats": {"inactive_file": 4096, "total_inactive_file": 8192, "rss": 61440},
    },
    "networks": {
        "eth0": {"rx_bytes": 1000, "tx_bytes": 10},
        "eth1": {"rx_bytes": 234, "tx_bytes": 5},
    },
}


def test_stats_give_the_counters_the_cgroup_reader_gives() -> None:
    c = counters_from_stats(STATS_V1)
    # v1: total_inactive_file (the hierarchy's), as cgroups.read_counters subtracts
    assert c == Counters(cpu_ns=1732049237, memory_bytes=577536 - 8192, rx_bytes=1234, tx_bytes=15)
    v2 = {**STATS_V1, "memory_stats": {"usage": 100000, "stats": {"inactive_file": 30000}}}
    assert counters_from_stats(v2) == Counters(1732049237, 70000, 1234, 15)
    no_net = {k: v for k, v in STATS_V1.items() if k != "networks"}
    assert counters_from_stats(no_net) == Counters(1732049237, 577536 - 8192, 0, 0)


def test_a_stopped_or_gone_container_has_no_counters() -> None:
    # What the engine answers for a container that stopped: zero time, empty sections.
    stopped = {"read": "0001-01-01T00:00:00Z", "cpu_stats": {"cpu_usage": {"total_usage": 0}},
               "memory_stats": {}}  # fmt: skip
    assert counters_from_stats(stopped) is None
    assert counters_from_stats({"message": "No such container: 0e6b50cbeb30"}) is None


class SlowNode(Engine):
    """Another node's engine whose stats calls all wait for each other: they return only when
    three are in flight at once, so a reader that asks one after another never gets one."""

    def __init__(self, count: int) -> None:
        super().__init__("unix:///nonexistent/docker.sock")
        self.listed = [
            Container(f"c{i}", f"p_t_web_{i}", "t", "web", "web", "running", "", "img", None, ())
            for i in range(count)
        ]
        self.together = threading.Barrier(count, timeout=10)

    def containers(self, *, all: bool = True, size: bool = False) -> list[Container]:
        return list(self.listed)

    def find(self, name: str) -> dict[str, Any] | None:
        return {"Id": name, "State": {"Pid": 4242, "StartedAt": START}}

    def counters(self, container_id: str) -> dict[str, Any]:
        self.together.wait()  # BrokenBarrierError unless all are asked at once
        return STATS_V1


def test_another_nodes_containers_are_read_at_once() -> None:
    node = SlowNode(3)
    readings = ContainerReader(node, node="w1", local=False).read()
    assert sorted(r.container_id for r in readings) == ["c0", "c1", "c2"]
    assert all(r.counters.cpu_ns == 1732049237 and r.node == "w1" for r in readings)


class Fixed:
    """A reader whose readings are given: the cycle's own input, not the engine's."""

    def __init__(self) -> None:
        self.readings: list[Reading] = []
        self.missing: dict[str, str] = {}

    @property
    def unreached(self) -> dict[str, str]:
        return dict(self.missing)

    def read(self) -> list[Reading]:
        return list(self.readings)


T0 = datetime(2026, 11, 30, 12, 0, 0)
START = "2026-11-30T11:59:00Z"  # both containers started a minute before T0


def _reading(cid: str, node: str, at: datetime, cpu_s: float, rx: int) -> Reading:
    return Reading(
        cid, "acme", "shop", "web", START, at, Counters(int(cpu_s * 1e9), 0, rx, 0), node
    )


def test_a_node_that_does_not_answer_keeps_its_containers_last_readings(tmp_path: Path) -> None:
    store, reader = tmp_path / "s.duckdb", Fixed()
    reader.readings = [_reading("a" * 64, "w1", T0, 30, 1000), _reading("b" * 64, "w2", T0, 6, 500)]
    first = metrics_cycle(store, reader, None, now=T0)
    assert (first.nodes, first.unreached) == ({"w1": 1, "w2": 1}, {})
    # w2 does not answer: only a is read, 60 s later, having used 30 CPU-seconds more
    t1 = T0 + timedelta(seconds=60)
    reader.readings = [_reading("a" * 64, "w1", t1, 60, 1600)]
    reader.missing = {"w2": "cannot reach the Docker engine"}
    second = metrics_cycle(store, reader, None, now=t1)
    assert second.unreached == {"w2": "cannot reach the Docker engine"}
    # w2 is back at T0 + 120 s: b used 12 CPU-seconds and 700 bytes since its reading at T0,
    # which the store kept; without it, b's whole life would count again (from its start).
    t2 = T0 + timedelta(seconds=120)
    reader.readings = [
        _reading("a" * 64, "w1", t2, 90, 2000),
        _reading("b" * 64, "w2", t2, 18, 1200),
    ]
    reader.missing = {}
    metrics_cycle(store, reader, None, now=t2)
    got = rows(
        store,
        'SELECT "timestamp", cpu_usage, bandwidth_in FROM deployment_metrics ORDER BY 1',
    )
    assert got == [
        # a: 30 s of CPU over its first 60 s (since its start) = 50 %; b: 6 s = 10 %
        (T0, 60.0, 1500),
        (t1, 50.0, 600),  # a only: 30 s in 60 s; b is not guessed
        # a: 30 s in 60 s = 50 %; b: 12 s over the 120 s since its kept reading = 10 %
        (t2, 60.0, 400 + 700),
    ]
    left = rows(store, "SELECT container_id, cpu_ns FROM container_readings ORDER BY 1")
    assert left == [("a" * 64, 90 * 10**9), ("b" * 64, 18 * 10**9)]


def test_a_full_read_drops_the_readings_of_containers_gone(tmp_path: Path) -> None:
    store, reader = tmp_path / "s.duckdb", Fixed()
    reader.readings = [_reading("a" * 64, "w1", T0, 1, 0), _reading("b" * 64, "w2", T0, 1, 0)]
    metrics_cycle(store, reader, None, now=T0)
    reader.readings = [_reading("a" * 64, "w1", T0 + timedelta(seconds=60), 2, 0)]
    metrics_cycle(store, reader, None, now=T0 + timedelta(seconds=60))
    assert rows(store, "SELECT container_id FROM container_readings") == [("a" * 64,)]


def test_samples_from_before_the_last_scale_event_are_not_averaged(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    now = T0
    with connect(store) as conn:
        for i, (ago, cpu) in enumerate([(170, 40.0), (100, 50.0), (50, 200.0), (10, 220.0)]):
            conn.execute(
                'INSERT INTO deployment_metrics (event_id, tenant, deployment, "timestamp", '
                "cpu_usage) VALUES (?, 'acme', 'shop', ?, ?)",
                [f"m{i}", now - timedelta(seconds=ago), cpu],
            )
        conn.execute(  # an older sample, outside the 3 minutes
            'INSERT INTO deployment_metrics (event_id, tenant, deployment, "timestamp", '
            "cpu_usage) VALUES ('old', 'acme', 'shop', ?, 99.0)",
            [now - timedelta(seconds=200)],
        )
    with duckdb.connect(str(store), read_only=True) as conn:
        assert recent_cpu(conn, "acme", "shop", now) == ([40.0, 50.0, 200.0, 220.0], None)
    with connect(store) as conn:
        conn.execute(
            "INSERT INTO scale_events VALUES ('acme', 'shop', ?, 1, 2, 'up', 100.0)",
            [now - timedelta(seconds=60)],
        )
    with duckdb.connect(str(store), read_only=True) as conn:
        samples, last = recent_cpu(conn, "acme", "shop", now)
    assert (sorted(samples), last) == ([200.0, 220.0], now - timedelta(seconds=60))


@pytest.mark.docker
def test_one_engine_listed_twice_reads_each_container_once_and_a_dead_node_is_named(
    docker_engine: str, tmp_path: Path
) -> None:
    tenant = unique()
    ids = [
        run_labelled(f"{tenant}_{i}", tenant, "shop", "web", "hosting-test/busybox:latest",
                     "sleep", "600")
        for i in range(2)
    ]  # fmt: skip
    try:
        manager = Engine()
        # /run/docker.sock is the same engine as /var/run/docker.sock by another address
        assert Path("/run/docker.sock").resolve() == Path("/var/run/docker.sock").resolve()
        reader = SwarmReader(
            manager,
            {"twin": "unix:///run/docker.sock", "gone": f"unix://{tmp_path}/none.sock"},
            frozenset({tenant}),
        )
        readings = reader.read()
        assert sorted(r.container_id for r in readings) == sorted(ids)
        assert {r.node for r in readings} == {"manager"}  # the first to list them
        assert list(reader.unreached) == ["gone"]
        assert "cannot reach the Docker engine" in reader.unreached["gone"]
        dead = SwarmReader(Engine(f"unix://{tmp_path}/none.sock"), {}, frozenset({tenant}))
        with pytest.raises(EngineUnreachable):
            dead.read()  # an unreachable manager fails the read, as one engine does
    finally:
        remove(ids)


@pytest.mark.docker
def test_the_stats_api_counts_what_the_kernel_files_count(docker_engine: str) -> None:
    """A node's engine is read through its stats, the manager's through cgroup files: on a
    container both can read, they agree (it spins, so each counter moves between reads)."""
    tenant = unique()
    cid = run_labelled(f"{tenant}_spin", tenant, "shop", "web", "hosting-test/busybox:latest",
                       "sh", "-c", "while :; do :; done")  # fmt: skip
    try:
        kernel = ContainerReader(Engine(), frozenset({tenant}))
        api = ContainerReader(Engine(), frozenset({tenant}), node="w1", local=False)
        k1, a1, k2 = kernel.read(), api.read(), kernel.read()
        [(k1r, a1r, k2r)] = zip(k1, a1, k2, strict=True)
        assert k1r.container_id == a1r.container_id == cid
        assert (a1r.node, a1r.started_at) == ("w1", k1r.started_at)
        # read between two kernel reads of a spinning container: CPU in between
        assert k1r.counters.cpu_ns <= a1r.counters.cpu_ns <= k2r.counters.cpu_ns
        assert k2r.counters.cpu_ns > k1r.counters.cpu_ns
        mem = (k1r.counters.memory_bytes, a1r.counters.memory_bytes)
        assert abs(mem[0] - mem[1]) <= max(mem) * 0.2, mem
        assert a1r.counters.rx_bytes <= k2r.counters.rx_bytes
    finally:
        remove([cid])
