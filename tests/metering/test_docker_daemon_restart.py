"""The Docker daemon restarts mid-interval, as after a host reboot or a package upgrade:
containers come back under their restart policy, metering carries on with no negative and no
doubled usage, the edge serves the same certificate it had, and `status` is right again.

This restarts the machine's dockerd (the way .ci/services.sh starts it), so it runs in CI,
where nothing else uses the engine at the same time.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from hosting.metering.agent import Agent, AgentConfig
from hosting.spec import load
from tests.conftest import REPO, run_hosting
from tests.docker_runtime.runtime import free_port
from tests.metering.helpers import docker, remove, rows, run_labelled, unique, wait_for, write_spec

pytestmark = [pytest.mark.docker, pytest.mark.alone]
IMAGE = "hosting-test/busybox:latest"
CADDY = "hosting-test/caddy:latest"


def dockerd_pid() -> int:
    out = subprocess.run(["pidof", "dockerd"], capture_output=True, text=True)
    pids = out.stdout.split()
    assert len(pids) == 1, f"one dockerd expected, found {pids}"
    return int(pids[0])


def restart_dockerd() -> None:
    """Stop dockerd as a reboot or an upgrade does (SIGTERM: it stops every container), then
    start it again the way CI does, with the isolation rule checked again."""
    pid = dockerd_pid()
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), timeout=120)
    subprocess.run(["bash", str(REPO / ".ci" / "services.sh")], check=True, capture_output=True)


def served_certificate(port: int) -> bytes:
    """The certificate the edge presents for `localhost` (read, not verified: only its
    identity matters here)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE

    def fetch() -> bytes | None:
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
                context.wrap_socket(raw, server_hostname="localhost") as tls,
            ):
                return tls.getpeercert(binary_form=True)
        except OSError:
            return None

    der: bytes = wait_for(fetch, timeout=60)
    return der


def test_a_daemon_restart_brings_everything_back_and_metering_carries_on(
    docker_engine: str, tmp_path: Path
) -> None:
    tenant = unique()
    spec_file = write_spec(tmp_path, {tenant: {
        "server": {"type": "web", "image": IMAGE, "port": 8080},
        "client": {"type": "api", "image": IMAGE, "port": 8080},
    }})  # fmt: skip
    spec = load(spec_file)
    state = tmp_path / "state"
    store = state / "hosting.duckdb"
    network = f"mt_{tenant}"
    server, client = f"mt_{tenant}_server_0", f"mt_{tenant}_client_0"
    edge, port = f"mt_{tenant}_edge", free_port()
    caddyfile = tmp_path / "Caddyfile"
    caddyfile.write_text(
        f"{{\n  admin off\n}}\nhttps://localhost:{port} {{\n  tls internal\n  respond ok\n}}\n"
    )
    docker("network", "create", network)
    try:
        run_labelled(server, tenant, "server", "web", "--restart", "unless-stopped",
                     "--network", network, "--network-alias", "server", IMAGE)  # fmt: skip
        docker("exec", server, "dd", "if=/dev/zero", "of=/www/big", "bs=1024", "count=64")
        run_labelled(
            client, tenant, "client", "api", "--restart", "unless-stopped", "--network", network,
            IMAGE, "sh", "-c", "while true; do wget -q -O /dev/null http://server:8080/big; done",
        )  # fmt: skip
        docker("run", "-d", "--name", edge, "--restart", "unless-stopped",
               "-p", f"127.0.0.1:{port}:{port}", "-v", f"{edge}_data:/data",
               "-v", f"{caddyfile}:/etc/caddy/Caddyfile:ro", CADDY,
               "caddy", "run", "--config", "/etc/caddy/Caddyfile")  # fmt: skip
        certificate = served_certificate(port)

        state.mkdir()
        agent = Agent(spec, store, spec_dir=tmp_path,
                      config=AgentConfig(edge_url="http://127.0.0.1:9"))  # fmt: skip
        for _ in range(3):
            agent.run_job("metrics")
            time.sleep(0.5)
        before = rows(store, "SELECT count(*) FROM deployment_metrics")[0][0]
        assert before > 0
        mark = agent_restart_mark(store)

        restart_dockerd()
        # While the containers come back the agent meters what there is, and fails no cycle
        # for good: each job reports, and the next one carries on.
        for name in (server, client, edge):
            wait_for(lambda n=name: docker("inspect", "-f", "{{.State.Running}}", n) == "true",
                     timeout=120)  # fmt: skip
        for _ in range(4):
            outcome = agent.run_job("metrics")
            assert outcome.ok, outcome
            time.sleep(1)

        # No sample is negative; none counts the bytes from before the restart again: after
        # the client's counters restarted at zero, every delta is at most what it has read.
        negative = rows(store, "SELECT count(*) FROM deployment_metrics WHERE bandwidth_in < 0"
                        " OR bandwidth_out < 0 OR cpu_usage < 0")  # fmt: skip
        assert negative == [(0,)]
        dupes = rows(
            store, "SELECT event_id FROM deployment_metrics GROUP BY 1 HAVING count(*) > 1"
        )
        assert dupes == []
        after = rows(store, "SELECT count(*) FROM deployment_metrics")[0][0]
        assert after > before
        reading = rows(store, "SELECT rx_bytes FROM container_readings WHERE tenant = ? AND "
                       "deployment = 'client'", [tenant])[0][0]  # fmt: skip
        since = rows(store, "SELECT coalesce(max(bandwidth_in), 0) FROM deployment_metrics"
                     " WHERE tenant = ? AND deployment = 'client' AND \"timestamp\" > ?",
                     [tenant, mark])[0][0]  # fmt: skip
        assert since <= reading

        # The edge kept its data volume: the same certificate, no new issuance.
        assert served_certificate(port) == certificate

        # `status` reads the containers back as running.
        proc = run_hosting("status", "--json", cwd=tmp_path, env={"HOSTING_STATE_DIR": str(state)})
        assert proc.returncode == 0, proc.stderr
        found = {d["deployment"]: d["status"] for d in json.loads(proc.stdout)["deployments"]}
        assert found == {"server": "running", "client": "running"}, found
    finally:
        remove([client, server, edge])
        docker("volume", "rm", "-f", f"{edge}_data", check=False)
        docker("network", "rm", network, check=False)


def agent_restart_mark(store: Path) -> object:
    """The time of the last sample recorded before the restart."""
    return rows(store, 'SELECT max("timestamp") FROM deployment_metrics')[0][0]
