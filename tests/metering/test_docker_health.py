"""Health on real containers: an app is probed at its own address on its tenant network, and
its restarts are capped; Docker unreachable restarts nothing. Restarts are counted from the
engine (each restart is a new State.StartedAt), not from our own records."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from hosting.metering.agent import Agent, AgentConfig
from hosting.metering.alerts import standing_alerts
from hosting.metering.engine import Engine
from hosting.metering.health import RestartPolicy, health_cycle
from hosting.spec import load, names
from tests.metering.helpers import (
    docker,
    remove,
    rows,
    run_labelled,
    unique,
    wait_for,
    write_spec,
)

pytestmark = pytest.mark.docker
IMAGE = "hosting-test/busybox:latest"


def _closed_port() -> str:
    """An edge URL where nothing listens: these tests are about the apps, not the edge."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _started(name: str) -> str:
    return docker("inspect", "-f", "{{.State.StartedAt}}", name)


def _answers(name: str) -> bool:
    """Asked from inside the container, so not by the code under test."""
    return docker("exec", name, "wget", "-q", "-O", "-", "http://127.0.0.1:8080/healthz",
                  check=False) != ""  # fmt: skip


def _tenant_network(platform: str, tenant: str) -> str:
    net = names.network_name(platform, tenant)
    docker("network", "create", "--label", f"hosting.tenant={tenant}",
           "--label", "hosting.deployment=", "--label", "hosting.type=network", net)  # fmt: skip
    return net


def test_an_app_that_stops_answering_is_restarted_after_n_failures(
    docker_engine: str, tmp_path: Path
) -> None:
    platform, tenant = unique("p"), unique()
    spec = load(write_spec(tmp_path, {tenant: {
        "web": {"type": "web", "image": IMAGE, "port": 8080,
                "health": {"path": "/healthz", "timeout_s": 2}},
        "db": {"type": "database"},  # no container: unknown
    }}, platform=platform))  # fmt: skip
    store = tmp_path / "s.duckdb"
    name = names.container_name(platform, tenant, "web")
    net = _tenant_network(platform, tenant)
    try:
        # No published port: the probe reaches the container's address on its tenant network.
        # httpd in the background, so killing it leaves a running container that does not answer.
        run_labelled(
            name, tenant, "web", "web", "--init", "--network", net, IMAGE,
            "sh", "-c", "httpd -f -p 8080 -h /www & echo $! > /tmp/httpd.pid; exec sleep 3600",
        )  # fmt: skip
        address = docker(
            "inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{net}").IPAddress}}}}', name
        )  # fmt: skip
        started = _started(name)
        edge = _closed_port()

        def cycle() -> dict[str, tuple[str, int, bool]]:
            report = health_cycle(store, Engine(), spec, edge_url=edge,
                                  policy=RestartPolicy(after=2))  # fmt: skip
            return {r.deployment: (r.status, r.failures, r.restarted) for r in report.deployments}

        wait_for(lambda: _answers(name))
        first = cycle()
        assert first["web"] == ("healthy", 0, False)
        assert first["db"][0] == "unknown"
        detail, route = rows(
            store, "SELECT detail, route_status FROM health_checks WHERE tenant = ?"
            " AND deployment = 'web' ORDER BY checked_at DESC LIMIT 1", [tenant],
        )[0]  # fmt: skip
        assert detail == f"{name} at {address}:8080: GET /healthz: HTTP 200"
        assert route == "unhealthy"  # no edge answers here, and that restarts nothing

        docker("exec", name, "sh", "-c", "kill $(cat /tmp/httpd.pid)")
        assert cycle()["web"] == ("unhealthy", 1, False)
        assert _started(name) == started
        assert cycle()["web"] == ("unhealthy", 2, True)  # the second failure restarts it
        assert _started(name) != started

        events = rows(
            store, "SELECT kind, detail FROM metering_events WHERE tenant = ? AND deployment = ?",
            [tenant, "web"],
        )  # fmt: skip
        assert events == [("restart", f"restarted {name}")]
        wait_for(lambda: _answers(name))
        assert cycle()["web"] == ("healthy", 0, False)

        docker("stop", "-t", "1", name)
        assert cycle()["web"][0] == "unhealthy"
    finally:
        remove([name])
        docker("network", "rm", net, check=False)


def test_a_failing_health_path_is_restarted_at_most_3_times_then_alerted(
    docker_engine: str, tmp_path: Path
) -> None:
    platform, tenant = unique("p"), unique()
    spec = load(write_spec(tmp_path, {tenant: {
        "web": {"type": "web", "image": IMAGE, "port": 8080,
                "health": {"path": "/missing", "timeout_s": 2}},  # busybox httpd: 404
    }}, platform=platform))  # fmt: skip
    store = tmp_path / "s.duckdb"
    name = names.container_name(platform, tenant, "web")
    net = _tenant_network(platform, tenant)
    config = AgentConfig(edge_url=_closed_port(), restart_after=1, restart_limit=3,
                         restart_window=900.0)  # fmt: skip

    def agent() -> Agent:
        return Agent(spec, store, spec_dir=tmp_path, config=config, engine=Engine())

    try:
        run_labelled(name, tenant, "web", "web", "--init", "--network", net, IMAGE)
        seen = [_started(name)]
        summaries = []
        first = agent()
        for turn in range(10):
            if turn == 5:
                first = agent()  # the agent restarts: the cap must hold across it
            outcome = first.run_job("health")
            assert outcome.ok, outcome.error
            summaries.append(outcome.summary)
            seen.append(_started(name))
        lives = list(dict.fromkeys(seen))  # each restart is a new StartedAt
        assert len(lives) == 4, seen  # the first life and 3 restarts
        assert [s["restarted"] for s in summaries[:3]] == [[f"{tenant}/web"]] * 3
        assert all(s["restarted"] == [] for s in summaries[3:])
        assert summaries[3]["held"] == [f"{tenant}/web"]
        assert docker("inspect", "-f", "{{.State.Running}}", name) == "true"

        alerts = rows(store, "SELECT kind, level, message FROM alerts WHERE tenant = ?", [tenant])
        assert len(alerts) == 1, alerts  # raised once, not every cycle
        kind, level, message = alerts[0]
        assert (kind, level) == ("restart_loop", "critical")
        assert message.startswith(f"{tenant}/web: restarted 3 times in 15 min and still failing")
        assert "HTTP 404" in message
        standing = [(a.kind, a.message) for a in standing_alerts(store, spec, tenant)]
        assert standing == [("restart_loop", message)]  # what `status` shows

        # Healthy again clears the hold and the standing alert.
        docker("exec", name, "sh", "-c", "echo ok > /www/missing")
        healed = agent().run_job("health").summary
        assert healed["statuses"] == {"healthy": 1} and healed["held"] == []
        state = rows(store, "SELECT level FROM alert_state WHERE tenant = ? AND kind = ?",
                     [tenant, "restart_loop"])  # fmt: skip
        assert state == [("ok",)]
        assert standing_alerts(store, spec, tenant) == []
        assert _started(name) == seen[-1]
    finally:
        remove([name])
        docker("network", "rm", net, check=False)


def test_docker_unreachable_restarts_nothing(docker_engine: str, tmp_path: Path) -> None:
    platform, tenant = unique("p"), unique()
    spec = load(write_spec(tmp_path, {tenant: {
        "web": {"type": "web", "image": IMAGE, "port": 8080,
                "health": {"path": "/missing", "timeout_s": 2}},
    }}, platform=platform))  # fmt: skip
    store = tmp_path / "s.duckdb"
    name = names.container_name(platform, tenant, "web")
    config = AgentConfig(edge_url=_closed_port(), restart_after=2)
    try:
        run_labelled(name, tenant, "web", "web", IMAGE)
        started = _started(name)
        up = Agent(spec, store, spec_dir=tmp_path, config=config, engine=Engine())
        assert up.run_job("health").summary["failing"]  # one failure of two: not yet
        down = Agent(
            spec, store, spec_dir=tmp_path, config=config,
            engine=Engine(f"unix://{tmp_path}/no-such-docker.sock"),
        )  # fmt: skip
        for _ in range(3):
            outcome = down.run_job("health")
            assert not outcome.ok
            assert outcome.summary == {"restarted": []}
            assert outcome.error is not None
            assert outcome.error.startswith("cannot reach the Docker engine at unix://")
            assert outcome.error.endswith("; health checked nothing and restarted nothing")
        assert _started(name) == started
        events = rows(store, "SELECT count(*) FROM metering_events WHERE tenant = ?", [tenant])
        assert events == [(0,)]
    finally:
        remove([name])
