"""Health on real containers: a container that stops answering turns unhealthy and is
restarted after N consecutive failures; the restart is recorded."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest

from hosting.metering.engine import Engine
from hosting.metering.health import health_cycle
from hosting.spec import load
from tests.metering.helpers import docker, remove, rows, run_labelled, unique, wait_for, write_spec

pytestmark = pytest.mark.docker
IMAGE = "hosting-test/busybox:latest"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def test_unanswering_container_is_restarted_after_n_failures(
    docker_engine: str, tmp_path: Path
) -> None:
    tenant = unique()
    name, port = f"{tenant}_web", _free_port()
    spec = load(write_spec(tmp_path, {tenant: {
        "web": {"type": "web", "image": IMAGE, "port": 8080,
                "health": {"path": "/healthz", "timeout_s": 2}},
        "db": {"type": "database"},  # no container: unknown
    }}))  # fmt: skip
    store = tmp_path / "s.duckdb"
    engine = Engine()
    try:
        # httpd in the background, so killing it leaves a running container that does not answer.
        run_labelled(
            name, tenant, "web", "web", "--init", "-p", f"127.0.0.1:{port}:8080", IMAGE,
            "sh", "-c", "httpd -f -p 8080 -h /www & echo $! > /tmp/httpd.pid; exec sleep 3600",
        )  # fmt: skip
        wait_for(lambda: _answers(port))
        started = docker("inspect", "-f", "{{.State.StartedAt}}", name)

        def cycle() -> dict[str, tuple[str, int, bool]]:
            results = health_cycle(
                store, engine, spec, edge_url=f"http://127.0.0.1:{port}", restart_after=2
            )
            return {r.deployment: (r.status, r.failures, r.restarted) for r in results}

        first = cycle()
        assert first["web"] == ("healthy", 0, False)
        assert first["db"][0] == "unknown"

        docker("exec", name, "sh", "-c", "kill $(cat /tmp/httpd.pid)")
        wait_for(lambda: not _answers(port))
        assert cycle()["web"] == ("unhealthy", 1, False)
        assert docker("inspect", "-f", "{{.State.StartedAt}}", name) == started
        assert cycle()["web"] == ("unhealthy", 2, True)  # the second failure restarts it

        assert docker("inspect", "-f", "{{.State.StartedAt}}", name) != started
        events = rows(
            store, "SELECT kind, detail FROM metering_events WHERE tenant = ? AND deployment = ?",
            [tenant, "web"],
        )  # fmt: skip
        assert events == [("restart", f"restarted {name}")]
        wait_for(lambda: _answers(port))
        assert cycle()["web"] == ("healthy", 0, False)
        statuses = rows(
            store,
            "SELECT status FROM health_checks WHERE tenant = ? AND deployment = 'web'"
            " ORDER BY checked_at",
            [tenant],
        )
        assert [s[0] for s in statuses] == ["healthy", "unhealthy", "unhealthy", "healthy"]

        docker("stop", "-t", "1", name)
        stopped = cycle()["web"]
        assert stopped[0] == "unhealthy"
    finally:
        remove([name])
