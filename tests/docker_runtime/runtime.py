"""Start typed container specs on the real engine with the docker CLI, and clean up after."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Mapping
from typing import Any

from hosting.provider.blockdev import device_of
from hosting.provider.volume_quota import driver_opts
from hosting.stacks.containers import ContainerSpec, write_host_files


def docker(*args: str, check: bool = True, timeout: float = 120) -> str:
    out = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and out.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])}… failed: {out.stderr.strip()}")
    return out.stdout.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Engine:
    """Creates what a test asks for and removes all of it (by name) at the end."""

    def __init__(self) -> None:
        self.containers: list[str] = []
        self.networks: list[str] = []
        self.volumes: list[str] = []
        # Where disk IO limits apply, as apply finds it (hosting.provider.blockdev).
        self.io_device = device_of(docker("info", "-f", "{{.DockerRootDir}}").strip())

    def network(self, name: str, labels: Mapping[str, str]) -> None:
        label_args = [a for k, v in labels.items() for a in ("--label", f"{k}={v}")]
        docker("network", "create", "--driver", "bridge", *label_args, name)
        self.networks.append(name)

    def start(self, spec: ContainerSpec, *, env: Mapping[str, str] | None = None) -> str:
        for m in spec.mounts:
            if m.kind == "volume" and m.source not in self.volumes:
                label_args = [a for k, v in spec.labels.items() for a in ("--label", f"{k}={v}")]
                opts = driver_opts(m.device) if m.device else {}
                opt_args = [a for k, v in opts.items() for a in ("--opt", f"{k}={v}")]
                docker("volume", "create", *label_args, *opt_args, m.source)
                self.volumes.append(m.source)
        self.containers.append(spec.name)
        write_host_files(spec)  # as apply does before the engine runs: binds need their source
        docker("create", *spec.docker_run_args(env=env, io_device=self.io_device))
        for net in spec.networks[1:]:
            alias_args = [a for al in net.aliases for a in ("--alias", al)]
            docker("network", "connect", *alias_args, net.network, spec.name)
        docker("start", spec.name)
        return spec.name

    def inspect(self, name: str) -> dict[str, Any]:
        data: list[dict[str, Any]] = json.loads(docker("inspect", name))
        return data[0]

    def wait_healthy(self, name: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.inspect(name)["State"]
            health = state.get("Health", {}).get("Status")
            if health == "healthy":
                return
            if not state["Running"] and state["Status"] == "exited":
                logs = docker("logs", "--tail", "20", name, check=False)
                raise AssertionError(f"{name} exited: {logs}")
            time.sleep(0.5)
        raise AssertionError(f"{name} not healthy within {timeout}s")

    def cleanup(self) -> None:
        for c in reversed(self.containers):
            docker("rm", "-f", "-v", c, check=False)
        for n in self.networks:
            docker("network", "rm", n, check=False)
        for v in self.volumes:
            docker("volume", "rm", "-f", v, check=False)


def pids_max(container_id: str) -> str:
    """The container's pids.max, read from its cgroup on the host (v1 or v2, either driver)."""
    candidates = [
        f"/sys/fs/cgroup/pids/docker/{container_id}/pids.max",
        f"/sys/fs/cgroup/pids/system.slice/docker-{container_id}.scope/pids.max",
        f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/pids.max",
        f"/sys/fs/cgroup/docker/{container_id}/pids.max",
    ]
    for path in candidates:
        if os.path.exists(path):
            with open(path) as f:
                return f.read().strip()
    raise AssertionError(f"no pids cgroup found for {container_id[:12]} in {candidates}")
