"""What the swarm's containers can reach: their own overlay's peers across nodes, not another
overlay's, and nothing off this machine (proven against a local network namespace, so no
packet is sent off the machine even if the test fails)."""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
import subprocess
from collections.abc import Iterator

import pytest

from tests.swarm.cluster import Swarm, wait_for

pytestmark = pytest.mark.swarm

BUSYBOX = "hosting-test/busybox:latest"
HELLO = ["sh", "-c", "hostname > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"]
INNER = ipaddress.ip_network("10.208.0.0/14")
OUTER = ipaddress.ip_network("172.20.0.0/14")


def pinned(swarm: Swarm, name: str, network: str, node: str) -> None:
    swarm.docker(
        "service", "create", "-d", "--no-resolve-image", "--name", name, "--network", network,
        "--endpoint-mode", "dnsrr", "--constraint", f"node.hostname=={node}", BUSYBOX, *HELLO,
    )  # fmt: skip


def task_of(swarm: Swarm, service: str) -> str:
    wait_for(f"{service} running", lambda: swarm.converged(service, 1))
    return swarm.running_tasks(service)[0][0]


def http_probe(ip: str, port: int) -> list[str]:
    """A busybox command for one HTTP GET with a 3 s connect timeout. Not `wget -T`: Debian 12's
    busybox wget segfaults with -T (exit 139) on this machine."""
    return ["sh", "-c", f'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 3 {ip} {port}']


def reaches(swarm: Swarm, task: str, ip: str) -> bool:
    """Whether a task gets an HTTP answer from ip:8080."""
    node, container = swarm.task_container(task)
    done = swarm.docker("exec", container, *http_probe(ip, 8080), node=node, check=False)
    return done.returncode == 0 and " 200 OK" in done.stdout


@pytest.fixture
def services(swarm: Swarm) -> Iterator[list[str]]:
    """Names to remove after the test, with the networks listed after them."""
    made: list[str] = []
    yield made
    services = [m for m in made if not m.startswith("net:")]
    if services:
        swarm.docker("service", "rm", *services, check=False)
    for network in (m[4:] for m in made if m.startswith("net:")):
        wait_for(f"network {network} removed", functools.partial(swarm.remove_network, network))


def test_overlay_peers_across_nodes_and_no_other_overlay(swarm: Swarm, services: list[str]) -> None:
    # Two tenants' networks, each with a task on w1 and one on w2.
    for net in ("tenant-a", "tenant-b"):
        swarm.docker("network", "create", "-d", "overlay", net)
        services.append(f"net:{net}")
    for name, net, node in (
        ("a1", "tenant-a", "w1"),
        ("a2", "tenant-a", "w2"),
        ("b1", "tenant-b", "w1"),
        ("b2", "tenant-b", "w2"),
    ):
        pinned(swarm, name, net, node)
        services.insert(0, name)
    a1, a2, b1, b2 = (task_of(swarm, s) for s in ("a1", "a2", "b1", "b2"))
    ip_a2, ip_b2 = swarm.task_ip(a2, "tenant-a"), swarm.task_ip(b2, "tenant-b")
    assert ipaddress.ip_address(ip_a2) in INNER and ipaddress.ip_address(ip_b2) in INNER
    # Same network, other node: reachable (so the refusals below are not a dead network).
    assert reaches(swarm, a1, ip_a2), "a1 (w1) cannot reach a2 (w2) on their own overlay"
    assert reaches(swarm, b1, ip_b2), "b1 (w1) cannot reach b2 (w2) on their own overlay"
    # Other tenant's network, other node: not reachable.
    assert not reaches(swarm, a1, ip_b2), "tenant-a's task reached tenant-b's across nodes"
    assert not reaches(swarm, b1, ip_a2), "tenant-b's task reached tenant-a's across nodes"


ESP_MISSING = re.compile(r"Failed Adding [fr]SA\{.*proto: esp.*function not implemented", re.I)


def test_encrypted_overlay_across_nodes(swarm: Swarm, services: list[str]) -> None:
    """Encrypted (IPsec) overlay: peers talk over ESP, or, without ESP in the kernel, not at all
    (docker drops the overlay's plain VXLAN): never in the clear."""
    swarm.docker("network", "create", "-d", "overlay", "--opt", "encrypted", "sealed")
    services.append("net:sealed")
    for name, node in (("s1", "w1"), ("s2", "w2")):
        pinned(swarm, name, "sealed", node)
        services.insert(0, name)
    s1, s2 = task_of(swarm, "s1"), task_of(swarm, "s2")
    reached = reaches(swarm, s1, swarm.task_ip(s2, "sealed"))
    log = subprocess.run(
        ["docker", "logs", f"{swarm.prefix}-w1"], capture_output=True, text=True
    ).stderr
    failure = next((line for line in log.splitlines() if ESP_MISSING.search(line)), None)
    if not reached:
        assert failure, "peers on an encrypted overlay cannot talk, and not for lack of ESP"
        pytest.skip(
            "encrypted overlays carry nothing here (fail closed): the kernel has no ESP "
            "(CONFIG_INET_ESP, CONFIG_CRYPTO_GCM unset); dockerd on w1: "
            + failure.split("msg=", 1)[-1][:160]
        )
    states = subprocess.run(
        ["docker", "exec", f"{swarm.prefix}-w1", "ip", "xfrm", "state"],
        capture_output=True,
        text=True,
    ).stdout
    assert "proto esp" in states, "peers talked on an encrypted overlay without ESP states"


def test_inner_networks_stay_in_their_range(swarm: Swarm) -> None:
    """Every network of every node's engine lies in 10.208.0.0/14: none collides with the host
    engine's 172.20.0.0/14, and each node drops forwarded traffic to anywhere else."""
    for node in swarm.nodes:
        names = swarm.docker("network", "ls", "-q", node=node).stdout.split()
        out = swarm.docker(
            "network", "inspect", "-f", "{{.Name}} {{range .IPAM.Config}}{{.Subnet}} {{end}}",
            *names, node=node,
        ).stdout  # fmt: skip
        subnets = {
            line.split()[0]: [ipaddress.ip_network(s) for s in line.split()[1:]]
            for line in out.splitlines()
        }
        assert {"bridge", "docker_gwbridge", "ingress"} <= set(subnets), subnets
        for name, nets in subnets.items():
            for net in nets:
                assert net.subnet_of(INNER), f"{node}: network {name} has {net}"  # type: ignore[arg-type]
        rules = subprocess.run(
            ["docker", "exec", f"{swarm.prefix}-{node}", "iptables", "-S", "DOCKER-USER"],
            capture_output=True,
            text=True,
        ).stdout.splitlines()
        assert rules[1:4] == [
            f"-A DOCKER-USER -d {OUTER} -j RETURN",
            f"-A DOCKER-USER -d {INNER} -j RETURN",
            "-A DOCKER-USER -j DROP",
        ], rules


# A stand-in for "anywhere else": an address in the benchmarking range (RFC 2544), routed to a
# network namespace on this machine for the test only. It has no route back, so even a probe
# that got through would get no answer out of it, and none leaves the machine.
NETNS, HOST_END, NS_END = "hs-egress-test", "hsegr0", "hsegr1"
HOST_ADDR, TARGET, PORT = "198.18.11.1/30", "198.18.11.2", 9999


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if check and done.returncode != 0:
        pytest.fail(f"{' '.join(cmd)}: {done.stderr.strip()}")
    return done


@pytest.fixture
def outside_host() -> Iterator[None]:
    sh("ip", "netns", "add", NETNS)
    try:
        sh("ip", "link", "add", HOST_END, "type", "veth", "peer", "name", NS_END, "netns", NETNS)
        sh("ip", "addr", "add", HOST_ADDR, "dev", HOST_END)
        sh("ip", "link", "set", HOST_END, "up")
        ns = ("ip", "netns", "exec", NETNS)
        sh(*ns, "ip", "addr", "add", f"{TARGET}/30", "dev", NS_END)
        sh(*ns, "ip", "link", "set", NS_END, "up")
        # A counting rule: every TCP packet to PORT that arrives, from anyone.
        sh(*ns, "iptables", "-A", "INPUT", "-p", "tcp", "--dport", str(PORT))
        assert f"dev {HOST_END}" in sh("ip", "route", "get", TARGET).stdout
        yield
    finally:
        sh("ip", "link", "del", HOST_END, check=False)
        sh("ip", "netns", "del", NETNS, check=False)


def arrived() -> int:
    out = sh("ip", "netns", "exec", NETNS, "iptables", "-L", "INPUT", "-v", "-n", "-x").stdout
    row = next(line for line in out.splitlines() if f"dpt:{PORT}" in line)
    return int(row.split()[0])


def test_no_container_reaches_an_address_off_the_machine(
    swarm: Swarm, services: list[str], outside_host: None
) -> None:
    # The host itself reaches the stand-in: its route and counter work.
    with socket.socket() as s:
        s.settimeout(3)
        assert s.connect_ex((TARGET, PORT)) != 0  # refused: nothing listens; the SYN arrived
    from_host = arrived()
    assert from_host >= 1
    swarm.docker("network", "create", "-d", "overlay", "egress")
    services.append("net:egress")
    pinned(swarm, "egress1", "egress", "w1")
    services.insert(0, "egress1")
    task = task_of(swarm, "egress1")
    node, container = swarm.task_container(task)
    probes = {
        # a task on an overlay network (out through the node's docker_gwbridge)
        "swarm task": swarm.docker(
            "exec", container, *http_probe(TARGET, PORT), node=node, check=False
        ),
        # a plain container on the node's default bridge
        "container": swarm.docker(
            "run", "--rm", BUSYBOX, *http_probe(TARGET, PORT), node=node, check=False
        ),
        # the node itself: a container of the host's engine
        "node": sh(
            "docker", "exec", f"{swarm.prefix}-{node}", "timeout", "3", "bash", "-c",
            f"echo > /dev/tcp/{TARGET}/{PORT}", check=False,
        ),
    }  # fmt: skip
    # Each probe ran and waited out its timeout: dropped on the way, neither refused nor answered.
    outcome = {k: (p.returncode, p.stderr.strip()[-80:]) for k, p in probes.items()}
    assert "timed out" in probes["swarm task"].stderr, outcome
    assert "timed out" in probes["container"].stderr, outcome
    assert probes["node"].returncode == 124, outcome  # timeout(1)'s "timed out"
    assert arrived() == from_host, "a packet from inside the swarm reached the outside address"
