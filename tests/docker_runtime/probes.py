"""What the hostile-tenant suite needs besides containers: probes run inside a container, host
listeners, cgroup counters, and a test host of our own in a network namespace.

Nothing here sends a packet off this machine: probes go to container, bridge-gateway and
network-namespace addresses only, by address (a name the engine's DNS does not know would be
forwarded to the host's resolver), and the namespace's address is checked to route into its
own veth before anything is sent to it.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

CONNECTED = "connected"
REFUSED = "refused"  # something answered with a reset: nothing listens there
FILTERED = "filtered"  # no answer at all within the timeout: a firewall dropped it


def sh(
    container: str, command: str, *, user: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """A shell command inside a running container, as a tenant's code would run it."""
    as_user = ["--user", user] if user else []
    return subprocess.run(
        ["docker", "exec", *as_user, container, "sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run(name: str, args: list[str], command: str) -> subprocess.CompletedProcess[str]:
    """`docker run --rm` of a control container, removed by name even when the run fails."""
    try:
        return subprocess.run(
            ["docker", "run", "--rm", "--name", name, *args, "sh", "-c", command],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


def tcp(container: str, ip: str, port: int) -> str:
    """Open a TCP connection from inside `container` (busybox nc, 3 s connect timeout)."""
    out = sh(container, f"nc -w 3 {ip} {port} </dev/null", timeout=60)
    if out.returncode == 0:
        return CONNECTED
    if os.strerror(111) in out.stderr:  # ECONNREFUSED
        return REFUSED
    if "timed out" in out.stderr:
        return FILTERED
    raise AssertionError(f"nc from {container} to {ip}:{port}: {out.stderr.strip()}")


@contextmanager
def listening(ip: str) -> Iterator[int]:
    """A TCP listener on this host at `ip`, accepting and closing every connection."""
    srv = socket.socket()
    srv.bind((ip, 0))
    srv.listen(16)
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(srv.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        srv.close()


def connects_from_host(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=3):
            return True
    except OSError:
        return False


def _cgroup_dir(container_id: str, controller: str) -> str:
    for path in (
        f"/sys/fs/cgroup/{controller}/docker/{container_id}",
        f"/sys/fs/cgroup/{controller}/system.slice/docker-{container_id}.scope",
        f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope",
        f"/sys/fs/cgroup/docker/{container_id}",
    ):
        if os.path.isdir(path):
            return path
    raise AssertionError(f"no {controller} cgroup found for {container_id[:12]}")


def memory_limit(container_id: str) -> int:
    """The container's memory limit in bytes, from its cgroup (v1 or v2)."""
    d = _cgroup_dir(container_id, "memory")
    name = "memory.limit_in_bytes" if os.path.exists(f"{d}/memory.limit_in_bytes") else "memory.max"
    with open(f"{d}/{name}") as f:
        return int(f.read())


def oom_kills(container_id: str) -> int:
    """How many processes the kernel's OOM killer killed in the container's cgroup."""
    d = _cgroup_dir(container_id, "memory")
    name = "memory.oom_control" if os.path.exists(f"{d}/memory.oom_control") else "memory.events"
    with open(f"{d}/{name}") as f:
        counts = dict(line.split() for line in f if line.strip())
    return int(counts["oom_kill"])


@dataclass(frozen=True)
class OutsideHost:
    """A host of our own, outside every Docker network: a namespace behind a veth pair."""

    namespace: str
    host_if: str  # the veth end in the host's namespace
    ip: str  # the namespace's address: 10.213.X.2/30, routed into host_if only
    port: int


_LISTENER = """
import socket, sys
s = socket.socket(); s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(16)
print("ready", flush=True)
while True:
    c, _ = s.accept(); c.close()
"""


def _ip(*args: str) -> str:
    out = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout


@contextmanager
def outside_host() -> Iterator[OutsideHost]:
    """Create the namespace, veth pair, addresses and a listener; remove all of it after.

    10.213.X.0/30 is private and not on any of this machine's networks; the route check below
    makes sure a packet for it goes into our veth, never to the default gateway.
    """
    tag = secrets.token_hex(3)
    ns, host_if, ns_if = f"hx{tag}", f"hxh{tag}", f"hxn{tag}"
    x = 1 + secrets.randbelow(250)
    host_ip, ns_ip, port = f"10.213.{x}.1", f"10.213.{x}.2", 8000
    listener: subprocess.Popen[str] | None = None
    try:
        _ip("netns", "add", ns)
        _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        _ip("link", "set", ns_if, "netns", ns)
        _ip("addr", "add", f"{host_ip}/30", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("-n", ns, "addr", "add", f"{ns_ip}/30", "dev", ns_if)
        _ip("-n", ns, "link", "set", ns_if, "up")
        _ip("-n", ns, "route", "add", "default", "via", host_ip)
        route = _ip("route", "get", ns_ip)
        assert f"dev {host_if} " in route, f"{ns_ip} does not route into {host_if}: {route}"
        listener = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c", _LISTENER, ns_ip, str(port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert listener.stdout is not None and listener.stdout.readline().strip() == "ready"
        yield OutsideHost(ns, host_if, ns_ip, port)
    finally:
        if listener is not None:
            listener.kill()
            listener.wait(timeout=10)
            if listener.stdout is not None:
                listener.stdout.close()
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


@contextmanager
def iptables_rule(chain: str, *rule: str) -> Iterator[None]:
    """One rule inserted first in `chain` for the duration, deleted after."""
    subprocess.run(["iptables", "-I", chain, "1", *rule], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run(["iptables", "-D", chain, *rule], check=False, capture_output=True)
