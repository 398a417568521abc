"""The swarm test cluster as the tests use it: each node's docker CLI, tasks, and waiting."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pytest

from tests.conftest import REPO

SCRIPT = REPO / ".ci" / "swarm.sh"
WORKERS = ("w1", "w2")
POSTGRES = "hosting-test/postgres:15"


def swarm_sh(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout
    )


def wait_for(what: str, check: Callable[[], bool], timeout: float = 120) -> float:
    """Poll `check` until it holds; the seconds it took. A deadline, not a measured assertion:
    the numbers are printed for the report, the tests assert outcomes."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            pytest.fail(f"{what}: not after {timeout:.0f} s")
        time.sleep(0.5)
    return time.monotonic() - start


@dataclass(frozen=True)
class Swarm:
    """The running cluster: every node's engine socket and its address on the host's network."""

    manager_host: str
    manager_ip: str
    nodes: tuple[str, ...]
    hosts: dict[str, str]
    ips: dict[str, str]
    prefix: str

    def docker(
        self, *args: str, node: str = "mgr", check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """The docker CLI against one node's engine (the manager by default)."""
        done = subprocess.run(
            ["docker", "-H", self.hosts[node], *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            pytest.fail(f"docker {' '.join(args)} on {node}: {done.stderr.strip()}")
        return done

    def node_status(self) -> dict[str, str]:
        out = self.docker("node", "ls", "--format", "{{.Hostname}} {{.Status}}").stdout
        return dict(line.split() for line in out.splitlines())

    def stop(self, node: str) -> None:
        """Kill a worker's engine outright (its container: the node's tasks die with it)."""
        assert node in WORKERS, "only a worker is stopped: the manager holds the swarm"
        done = swarm_sh("stop", node, timeout=60)
        assert done.returncode == 0, done.stderr

    def start(self, node: str) -> None:
        """Start a stopped worker again and wait until the manager sees it Ready."""
        done = swarm_sh("start", node, timeout=120)
        assert done.returncode == 0, done.stderr
        wait_for(f"node {node} Ready again", lambda: self.node_status().get(node) == "Ready")

    def running_tasks(self, service: str) -> list[tuple[str, str, str]]:
        """(task id, node, state) of the tasks the manager wants running for `service`."""
        out = self.docker(
            "service",
            "ps",
            "--no-trunc",
            "-f",
            "desired-state=running",
            "--format",
            "{{.ID}} {{.Node}} {{.CurrentState}}",
            service,
        ).stdout
        return [
            (t, n, state.split()[0])
            for t, n, state in (line.split(maxsplit=2) for line in out.splitlines())
        ]

    def converged(self, service: str, replicas: int) -> bool:
        tasks = self.running_tasks(service)
        return len(tasks) == replicas and all(state == "Running" for _, _, state in tasks)

    def remove_network(self, name: str) -> bool:
        """Remove a swarm network; False while tasks are still attached to it."""
        done = self.docker("network", "rm", name, check=False)
        return done.returncode == 0 or "not found" in done.stderr

    def task_container(self, task_id: str) -> tuple[str, str]:
        """(node, container id) of a running task, for `exec` on that node's engine."""
        for node in self.nodes:
            if self.node_status().get(node) != "Ready":
                continue
            out = self.docker(
                "ps", "-q", "-f", f"label=com.docker.swarm.task.id={task_id}", node=node
            ).stdout.split()
            if out:
                return node, out[0]
        pytest.fail(f"no container for task {task_id} on any node")

    def task_ip(self, task_id: str, network: str) -> str:
        node, container = self.task_container(task_id)
        fmt = f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}'
        return self.docker("inspect", "-f", fmt, container, node=node).stdout.strip()

    def platform_lines(self, nodes: Mapping[str, str] | None = None) -> str:
        """The lines of `platform:` that point a spec at this cluster, `target:` to `images:`:
        unencrypted overlays and DNS round-robin, as this kernel needs (README, "The swarm
        test cluster"), and the local images. `nodes`: the engines the agent meters."""
        listed = "".join(f'      {n}: "{h}"\n' for n, h in (nodes or {}).items())
        return (
            "  target: swarm\n  swarm:\n    encrypted_networks: false\n    endpoint_mode: dnsrr\n"
            + ("    nodes:\n" + listed if nodes else "")
            + f'  docker: {{host: "{self.manager_host}"}}\n'
            + f'  images: {{proxy: "hosting-test/caddy:latest", postgres: "{POSTGRES}"}}\n'
        )
