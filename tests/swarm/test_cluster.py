"""The swarm cluster on its own: nodes, spreading, serving across nodes, losing a worker.

Plain `docker service` against the manager; hosting's program is not involved. This kernel has
no IPVS, so neither the ingress routing mesh nor service VIPs work here (see
test_ingress_routing_mesh): services use `--endpoint-mode dnsrr` and an edge (Caddy, host-mode
port on the manager) resolves `tasks.SERVICE` and balances over the tasks itself.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.swarm.cluster import Swarm, wait_for

pytestmark = pytest.mark.swarm

BUSYBOX = "hosting-test/busybox:latest"
# Each task answers with its hostname, NODE-SLOT, so an answer names the node that served it.
HELLO = ["sh", "-c", "mkdir -p /w && hostname > /w/index.html && exec httpd -f -p 8080 -h /w"]
EDGE_PORT = 18080  # on the manager node's own address: no host port is bound
CADDYFILE = """{
	admin off
	auto_https off
}
:8080 {
	reverse_proxy {
		dynamic a tasks.web 8080 {
			refresh 1s
		}
		lb_policy round_robin
		lb_try_duration 5s
		lb_try_interval 250ms
		fail_duration 10s
		transport http {
			dial_timeout 1s
		}
	}
}
"""


def hello_service(swarm: Swarm, name: str, *args: str) -> None:
    swarm.docker(
        "service", "create", "-d", "--no-resolve-image", "--name", name,
        "--hostname", "{{.Node.Hostname}}-{{.Task.Slot}}", *args, BUSYBOX, *HELLO,
    )  # fmt: skip


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=3) as response:
        return str(response.read().decode().strip())


@pytest.fixture(scope="module")
def web(swarm: Swarm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`web`: 6 replicas on an overlay network, and the edge in front of it; the edge's URL."""
    swarm.docker("network", "create", "-d", "overlay", "mesh")
    hello_service(swarm, "web", "--replicas", "6", "--endpoint-mode", "dnsrr", "--network", "mesh")
    caddyfile = tmp_path_factory.mktemp("edge") / "Caddyfile"
    caddyfile.write_text(CADDYFILE)
    swarm.docker("config", "create", "edge-caddyfile", str(caddyfile))
    swarm.docker(
        "service", "create", "-d", "--no-resolve-image", "--name", "edge",
        "--network", "mesh", "--constraint", "node.role==manager",
        "--publish", f"mode=host,published={EDGE_PORT},target=8080",
        "--config", "src=edge-caddyfile,target=/etc/caddy/Caddyfile", "hosting-test/caddy:latest",
    )  # fmt: skip
    wait_for("6 web tasks running", lambda: swarm.converged("web", 6))
    wait_for("the edge running", lambda: swarm.converged("edge", 1))
    url = f"http://{swarm.manager_ip}:{EDGE_PORT}/"
    wait_for("the edge answering", lambda: _answers(url))
    yield url
    swarm.docker("service", "rm", "edge", "web", check=False)
    swarm.docker("config", "rm", "edge-caddyfile", check=False)
    # The network goes once the removed services' tasks have left it.
    wait_for("network mesh removed", lambda: swarm.remove_network("mesh"))


def _answers(url: str) -> bool:
    try:
        get(url)
    except OSError:
        return False
    return True


def test_three_nodes_ready_one_manager(swarm: Swarm) -> None:
    out = swarm.docker(
        "node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.ManagerStatus}} {{.EngineVersion}}"
    ).stdout
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()}
    assert sorted(rows) == ["mgr", "w1", "w2"]
    assert rows["mgr"][:2] == ["Ready", "Leader"]
    for worker in ("w1", "w2"):
        assert rows[worker][0] == "Ready"
        assert len(rows[worker]) == 2, f"{worker} is a manager: {rows[worker]}"
    # Debian's docker.io, not an upstream build: its version carries Debian's +dfsg suffix.
    assert all("+dfsg" in row[-1] for row in rows.values()), rows


def test_replicas_spread_and_answer_from_every_node(swarm: Swarm, web: str) -> None:
    nodes = Counter(node for _, node, _ in swarm.running_tasks("web"))
    assert sorted(nodes) == ["mgr", "w1", "w2"], nodes
    answers = Counter(get(web) for _ in range(30))
    print(f"\nanswers through the edge: {dict(answers)}")
    served_by = {answer.split("-")[0] for answer in answers}
    assert served_by == {"mgr", "w1", "w2"}, answers


@pytest.mark.skipif(
    not Path("/proc/net/ip_vs").exists(),
    reason="the ingress routing mesh and service VIPs need IPVS, which this kernel lacks "
    "(CONFIG_IP_VS is not set; dockerd logs 'Could not get ipvs family information from the "
    "kernel'): a port published in ingress mode refuses connections",
)
def test_ingress_routing_mesh(swarm: Swarm) -> None:
    """Where the kernel has IPVS: any node's published port reaches tasks on every node."""
    hello_service(swarm, "meshed", "--replicas", "6", "--publish", "published=18081,target=8080")
    try:
        wait_for("6 meshed tasks running", lambda: swarm.converged("meshed", 6))
        url = f"http://{swarm.ips['w1']}:18081/"
        wait_for("the routing mesh answering", lambda: _answers(url))
        served_by = {get(url).split("-")[0] for _ in range(30)}
        assert len(served_by) > 1, served_by
    finally:
        swarm.docker("service", "rm", "meshed", check=False)


@dataclass
class LoadLoop:
    """Requests one after another until stopped; counts answers and failures."""

    url: str
    ok: int = 0
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                get(self.url)
                self.ok += 1
            except OSError as error:
                self.failed += 1
                self.errors[type(error).__name__] += 1
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def total(self) -> int:
        return self.ok + self.failed


def test_worker_lost_tasks_rescheduled_and_requests_still_answered(swarm: Swarm, web: str) -> None:
    loop = LoadLoop(web)
    loop.start()
    try:
        wait_for("20 requests before the worker is killed", lambda: loop.ok >= 20)
        before_kill = (loop.ok, loop.failed)
        swarm.stop("w2")
        took = wait_for(
            "web's 6 tasks running again, none on w2",
            lambda: (
                swarm.converged("web", 6)
                and "w2" not in {node for _, node, _ in swarm.running_tasks("web")}
            ),
        )
        at_reschedule = (loop.ok, loop.failed)
        wait_for("100 requests after rescheduling", lambda: loop.total >= sum(at_reschedule) + 100)
        loop.stop()
        after = (loop.ok, loop.failed)
        print(
            f"\nkill w2 -> rescheduled in {took:.1f} s; requests (ok, failed): before kill "
            f"{before_kill}, until rescheduled {at_reschedule}, end {after}; "
            f"errors {dict(loop.errors)}"
        )
        assert swarm.node_status()["w2"] == "Down"
        assert after[1] == at_reschedule[1], "requests failed after the tasks were rescheduled"
        assert after[0] >= at_reschedule[0] + 100
    finally:
        loop.stop()
        swarm.start("w2")
