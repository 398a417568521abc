"""A real 3-node Docker Swarm on this machine (marker `swarm`), started by `.ci/swarm.sh`.

Three Debian dockerd engines in containers of the host's engine: `mgr` (manager), `w1`, `w2`
(workers). Each engine's API is a unix socket under /run/hosting-swarm/NODE/. The cluster lives
for the session; `down` removes every container, volume and network it made.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _docker_ok, require
from tests.swarm.cluster import Swarm, swarm_sh


def _prerequisites() -> str | None:
    if os.geteuid() != 0:
        return "root (the swarm nodes are containers with every capability)"
    if not _docker_ok():
        return "a running Docker engine"
    image = subprocess.run(
        ["docker", "image", "inspect", "hosting-test/busybox:latest", "hosting-test/caddy:latest"],
        capture_output=True,
    )
    if image.returncode != 0:
        return "the local images hosting-test/busybox and hosting-test/caddy (bash .ci/images.sh)"
    if shutil.which("debootstrap") is None:
        return "debootstrap (the node image is built from Debian's docker.io)"
    return None


@pytest.fixture(scope="session")
def swarm() -> Iterator[Swarm]:
    missing = _prerequisites()
    require(missing is None, str(missing))
    started = time.monotonic()
    up = swarm_sh("up")
    if up.returncode != 0:
        swarm_sh("down", timeout=120)
        pytest.fail(f".ci/swarm.sh up failed:\n{up.stderr[-3000:]}")
    env = dict(line.split("=", 1) for line in up.stdout.splitlines() if "=" in line)
    nodes = tuple(env["SWARM_NODES"].split())
    cluster = Swarm(
        manager_host=env["SWARM_MANAGER_HOST"],
        manager_ip=env["SWARM_MANAGER_IP"],
        nodes=nodes,
        hosts={n: env[f"SWARM_HOST_{n}"] for n in nodes},
        ips={n: env[f"SWARM_IP_{n}"] for n in nodes},
        prefix=env["SWARM_PREFIX"],
    )
    print(f"\nswarm: {len(nodes)} nodes up in {time.monotonic() - started:.1f} s")
    try:
        yield cluster
    finally:
        down = swarm_sh("down", timeout=300)
        assert down.returncode == 0, down.stderr
        assert not Path(env["SWARM_RUN"]).exists(), "swarm.sh down left its run directory"
