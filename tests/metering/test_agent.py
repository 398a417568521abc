"""The agent's resilience: Docker unreachable then back, one failing collector, --once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hosting.metering.agent import Agent, AgentConfig
from hosting.metering.engine import Engine
from hosting.spec import load
from tests.conftest import run_hosting
from tests.metering.helpers import write_spec

pytestmark = pytest.mark.docker


def _events(log: Path) -> list[str]:
    return [json.loads(line)["event"] for line in log.read_text().splitlines()]


def test_docker_unreachable_is_reported_once_and_recovery_is_logged(
    docker_engine: str, tmp_path: Path
) -> None:
    spec = load(write_spec(tmp_path, {"tzz": {"db": {"type": "database"}}}))
    socket_path = tmp_path / "docker.sock"  # nothing there yet: the engine is "down"
    lines: list[str] = []
    agent = Agent(
        spec, tmp_path / "s.duckdb", spec_dir=tmp_path,
        engine=Engine(f"unix://{socket_path}"), log_file=tmp_path / "agent.log",
        echo=lines.append,
    )  # fmt: skip
    down = agent.run_once()
    # Domains need no Docker; metrics, health, storage and the network rates do.
    assert [o.ok for o in down] == [False, False, False, True, False]
    assert "cannot reach the Docker engine" in (down[0].error or "")
    # Once, not per job (the domains job needs no Docker and just runs).
    assert _events(tmp_path / "agent.log") == ["docker_unreachable", "domains"]
    socket_path.symlink_to(docker_engine.removeprefix("unix://"))  # the engine is back
    up = agent.run_once()
    assert [o.ok for o in up] == [True, True, True, True, True]
    assert _events(tmp_path / "agent.log")[:4] == [
        "docker_unreachable", "domains", "docker_recovered", "metrics",
    ]  # fmt: skip
    assert lines == (tmp_path / "agent.log").read_text().splitlines()


def test_one_failing_collector_does_not_stop_the_others(docker_engine: str, tmp_path: Path) -> None:
    spec = load(write_spec(tmp_path, {"tzz": {"db": {"type": "database"}}}))

    def broken(tenant: str, deployment: str) -> None:
        raise RuntimeError("credentials store is down")

    log = tmp_path / "agent.log"
    agent = Agent(spec, tmp_path / "s.duckdb", spec_dir=tmp_path, config=AgentConfig(),
                  credentials=broken, log_file=log)  # fmt: skip
    outcomes = {o.job: o for o in agent.run_once()}
    assert not outcomes["storage"].ok
    assert "RuntimeError: credentials store is down" in (outcomes["storage"].error or "")
    assert outcomes["metrics"].ok and outcomes["health"].ok
    assert agent.run_job("metrics").ok  # and the next turn goes on
    failed = [json.loads(x) for x in log.read_text().splitlines() if "job_failed" in x]
    assert [f["job"] for f in failed] == ["storage"]


def test_meter_once_with_docker_unreachable_exits_1_with_a_clear_error(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, {"tzz": {"db": {"type": "database"}}})
    text = spec.read_text().replace(
        "  public_ipv4: 127.0.0.1\n",
        f"  public_ipv4: 127.0.0.1\n  docker:\n    host: unix://{tmp_path}/none.sock\n",
    )
    spec.write_text(text)
    proc = run_hosting("meter", "--once", cwd=tmp_path)
    assert proc.returncode == 1
    assert "error: metrics: cannot reach the Docker engine" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "metrics  failed" in proc.stdout and "storage  failed" in proc.stdout
    health = next(line for line in proc.stdout.splitlines() if line.startswith("health "))
    assert health.endswith("; health checked nothing and restarted nothing")
