"""A stopped or missing edge restarts no app: two tenants' apps run behind a real Caddy of the
test's own; with the edge down, 10 health cycles restart none of them (counted from the
engine), raise `edge_down`, and restart the edge itself."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from hosting.metering.agent import Agent, AgentConfig
from hosting.metering.engine import Engine
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
CADDY = "caddy:2-alpine"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _life(name: str) -> tuple[str, str]:
    """(StartedAt, RestartCount) as the engine reports them."""
    out = docker("inspect", "-f", "{{.State.StartedAt}} {{.RestartCount}}", name)
    started, count = out.split()
    return started, count


def _caddy_config(routes: dict[str, str]) -> dict[str, Any]:
    return {
        "admin": {"disabled": True},
        "apps": {"http": {"servers": {"edge": {
            "listen": [":80"],
            "automatic_https": {"disable": True},
            "routes": [
                {"match": [{"host": [host]}],
                 "handle": [{"handler": "reverse_proxy", "upstreams": [{"dial": upstream}]}]}
                for host, upstream in routes.items()
            ],
        }}}},
    }  # fmt: skip


def _edge_answers(port: int) -> bool:
    """Asked with a bare socket, not with the code under test."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"HEAD / HTTP/1.0\r\nHost: x\r\n\r\n")
            return s.recv(5) == b"HTTP/"
    except OSError:
        return False


def test_a_down_edge_restarts_no_app_and_is_restarted_itself(
    docker_engine: str, tmp_path: Path
) -> None:
    platform = unique("p")
    tenants = [unique(), unique()]
    spec = load(write_spec(tmp_path, {t: {
        "web": {"type": "web", "image": IMAGE, "port": 8080,
                "health": {"path": "/healthz", "timeout_s": 2}},
    } for t in tenants}, platform=platform))  # fmt: skip
    store = tmp_path / "s.duckdb"
    apps = [names.container_name(platform, t, "web") for t in tenants]
    nets = [names.network_name(platform, t) for t in tenants]
    edge = f"{platform}-test-edge"  # not the stack's default name: the option must be used
    port = _free_port()  # a high loopback port, never 80/443
    hosts = {t: names.hostname(t, "web", "web", "apps.localhost") for t in tenants}
    (tmp_path / "caddy.json").write_text(json.dumps(_caddy_config(
        {hosts[t]: f"{app}:8080" for t, app in zip(tenants, apps, strict=True)}
    )))  # fmt: skip
    config = AgentConfig(edge_url=f"http://127.0.0.1:{port}", edge_container=edge,
                         restart_after=3)  # fmt: skip
    agent = Agent(spec, store, spec_dir=tmp_path, config=config, engine=Engine())
    try:
        for t, app, net in zip(tenants, apps, nets, strict=True):
            docker("network", "create", "--label", f"hosting.tenant={t}", net)
            run_labelled(app, t, "web", "web", "--init", "--network", net, IMAGE)
        run_labelled(
            edge, "", "edge", "edge", "--network", nets[0], "-p", f"127.0.0.1:{port}:80",
            "-v", f"{tmp_path}/caddy.json:/etc/caddy/caddy.json:ro",
            CADDY, "caddy", "run", "--config", "/etc/caddy/caddy.json",
        )  # fmt: skip
        docker("network", "connect", nets[1], edge)
        wait_for(lambda: _edge_answers(port))

        before = agent.run_job("health")
        assert before.ok, before.error
        assert before.summary["statuses"] == {"healthy": 2}
        assert before.summary["routes_failing"] == {}  # the route through the edge works too
        assert before.summary["edge"]["status"] == "healthy"
        lives = {app: _life(app) for app in apps}
        edge_life = _life(edge)

        docker("stop", "-t", "2", edge)
        outcomes = [agent.run_job("health") for _ in range(10)]

        # 0 app restarts, by the engine's own account.
        assert {app: _life(app) for app in apps} == lives
        assert all(o.ok and o.summary["restarted"] == [] for o in outcomes)
        assert all(o.summary["statuses"] == {"healthy": 2} for o in outcomes)
        # The edge was restarted (started again) by the agent, once, on its third failure.
        assert [o.summary["edge"]["restarted"] for o in outcomes[:3]] == [False, False, True]
        assert sum(o.summary["edge"]["restarted"] for o in outcomes) == 1
        assert docker("inspect", "-f", "{{.State.Running}}", edge) == "true"
        assert _life(edge)[0] != edge_life[0]
        # The edge_down alert, raised once, while the routes were recorded as down.
        alerts = rows(store, "SELECT tenant, kind, level, message FROM alerts")
        assert [a[:3] for a in alerts] == [("", "edge_down", "critical")]
        assert f"its container {edge} is exited" in alerts[0][3]
        assert outcomes[0].summary["alerts"][0].startswith("edge_down: the edge does not answer")
        down_routes = rows(
            store, "SELECT DISTINCT status, route_status, route_detail FROM health_checks"
            " WHERE checked_at > (SELECT min(checked_at) FROM health_checks)"
            " AND route_status = 'unhealthy'",
        )  # fmt: skip
        assert down_routes == [("healthy", "unhealthy", "the edge does not answer")]

        # Back: the alert clears; then with no edge container at all, still no app restart.
        wait_for(lambda: _edge_answers(port))
        assert agent.run_job("health").summary["edge"]["status"] == "healthy"
        assert rows(store, "SELECT level FROM alert_state WHERE kind = 'edge_down'") == [("ok",)]
        remove([edge])
        gone = [agent.run_job("health") for _ in range(10)]
        assert {app: _life(app) for app in apps} == lives
        assert all(o.summary["restarted"] == [] for o in gone)
        assert not any(o.summary["edge"]["restarted"] for o in gone)
        assert gone[-1].summary["edge"]["detail"].endswith(f"; no container {edge} to restart")
        kinds = rows(store, "SELECT kind FROM alerts ORDER BY created_at")
        assert kinds == [("edge_down",), ("edge_down",)]
        events = rows(store, "SELECT tenant, deployment, detail FROM metering_events")
        assert events == [("", "edge", f"restarted {edge}")]
    finally:
        remove([edge, *apps])
        for net in nets:
            docker("network", "rm", net, check=False)
