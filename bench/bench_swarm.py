"""A new image rolled out across 10 replicas on the swarm target (issue 11), under a request
loop through the edge, on the 3-node test swarm (.ci/swarm.sh).

1. `hosting apply` of a spec whose only change is the image: wall time until apply returns
   (every task replaced, one at a time, start-first, each watched before the next), and the
   failed requests meanwhile (the aim: none).
   Baseline: the same rollout by hand, `docker service update --image` of the same service
   (Swarm's own rolling update with the same settings, waited for with --detach=false).
   The ratio is what hosting's path (the engine's refresh, diff and convergence polling)
   costs over Swarm doing the same work.

2. The metering agent's overhead per node, with the 10 tasks spread over the nodes and no load:
   one metrics read of each node's tasks through its engine's stats API (what the agent on the
   manager does every minute for every node of `platform.swarm.nodes`, hosting.metering.nodes),
   repeated. Per node: the agent's own CPU and wall time per read, and the CPU the node's
   engine (dockerd, containerd and the shims: the node container's own cgroup) spent answering.
   Baseline: `docker -H NODE stats --no-stream`, the same counters read by hand, on the same
   node in the same run. The ratio is the engine CPU the agent costs a node per read over the
   CLI's; the share of one core is that CPU over the agent's 60 s metrics interval.

Needs root, the engine (HOSTING_ENGINE_DIR) and the local images (.ci/services.sh). Everything
it makes is removed at the end. Run: python bench/bench_swarm.py
"""

from __future__ import annotations

import os
import secrets
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from hosting.spec import names  # noqa: E402 (after the path)

PREFIX = "hosting-swarm-bench"
RUN = Path("/run") / PREFIX
ENV = {**os.environ, "HOSTING_SWARM_PREFIX": PREFIX, "HOSTING_SWARM_RUN": str(RUN)}
PASSPHRASE = "bench-passphrase"
REPLICAS = 10
SPEC = """
version: 1
platform:
  name: {platform}
  domain: apps.localhost
  public_ipv4: 127.0.0.1
  target: swarm
  swarm: {{encrypted_networks: false, endpoint_mode: dnsrr}}
  docker: {{host: "unix://{run}/mgr/docker.sock"}}
  images: {{proxy: "hosting-test/caddy:latest"}}
tenants:
  acme:
    name: Acme
    email: a@example.test
    plan: starter
    started: 2026-01-01
    deployments:
      shop:
        type: web
        image: {image}
        port: 8080
        replicas: {replicas}
        health: {{path: /healthz, interval_s: 2}}
"""


def swarm_sh(*args: str) -> str:
    out = subprocess.run(
        ["bash", str(REPO / ".ci/swarm.sh"), *args], env=ENV, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(f"swarm.sh {' '.join(args)} failed:\n{out.stderr}")
    return out.stdout


def hosting(folder: Path, *args: str) -> float:
    start = time.perf_counter()
    out = subprocess.run(
        ["python3", "-m", "hosting", *args],
        cwd=folder,
        env={**ENV, "HOSTING_PASSPHRASE": PASSPHRASE},
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"hosting {' '.join(args)} failed:\n{out.stderr}")
    return time.perf_counter() - start


def on(node: str, *args: str) -> str:
    host = f"unix://{RUN}/{node}/docker.sock"
    return subprocess.run(
        ["docker", "-H", host, *args], capture_output=True, text=True, check=True
    ).stdout


class Load:
    """Requests through the edge on the manager's 443, counted until stopped."""

    def __init__(self, ip: str, ctx: ssl.SSLContext, host: str) -> None:
        self.ok = self.failed = 0
        self._stop = threading.Event()

        def get() -> bool:
            request = f"GET /healthz HTTP/1.0\r\nHost: {host}\r\n\r\n".encode()
            raw = socket.create_connection((ip, 443), timeout=40)
            with ctx.wrap_socket(raw, server_hostname=host) as tls:
                tls.sendall(request)
                data = b""
                while chunk := tls.recv(65536):
                    data += chunk
            return data.split(b" ", 2)[1] == b"200"

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    good = get()
                except OSError:
                    good = False
                self.ok += good
                self.failed += not good
                time.sleep(0.05)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)


def edge_context(platform: str, folder: Path) -> ssl.SSLContext:
    pem = folder / "root.crt"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ids = on("mgr", "ps", "-q", "-f", f"name={platform}_edge").split()
        if ids:
            done = subprocess.run(
                ["docker", "-H", f"unix://{RUN}/mgr/docker.sock", "cp",
                 f"{ids[0]}:/data/caddy/pki/authorities/local/root.crt", str(pem)],
                capture_output=True,
            )  # fmt: skip
            if done.returncode == 0 and pem.stat().st_size:
                return ssl.create_default_context(cafile=str(pem))
        time.sleep(0.5)
    raise SystemExit("the edge's root certificate never appeared")


READS = 20  # per node, for the agent and for the baseline each


def node_cpu_s(node: str) -> float:
    """CPU seconds of the node's engine: its container's own cgroup (the tasks' cgroups are
    the node engine's, beside it), read on this machine."""
    pid = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Pid}}", f"{PREFIX}-{node}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    if Path("/sys/fs/cgroup/cgroup.controllers").exists():  # cgroup v2
        path = next(line.split(":", 2)[2] for line in lines if line.startswith("0::"))
        stat = Path(f"/sys/fs/cgroup{path}/cpu.stat").read_text().split()
        return int(stat[stat.index("usage_usec") + 1]) / 1e6
    # v1: the hierarchy's folder is named by its controllers, `cpuacct` or `cpu,cpuacct`
    controllers, path = next(
        line.split(":", 2)[1:] for line in lines if "cpuacct" in line.split(":")[1].split(",")
    )
    usage = Path(f"/sys/fs/cgroup/{controllers}{path}/cpuacct.usage").read_text()
    return int(usage) / 1e9


def agent_overhead_per_node() -> None:
    from hosting.metering.containers import ContainerReader
    from hosting.metering.engine import Engine

    print(f"\nmetering agent overhead per node ({READS} reads each, no load)")
    print(f"  {'node':<5} {'tasks':>5} {'agent cpu':>10} {'wall':>8} {'engine cpu':>11} "
          f"{'by hand':>9} {'ratio':>7} {'core share':>11}")  # fmt: skip
    for node in ("mgr", "w1", "w2"):
        host = f"unix://{RUN}/{node}/docker.sock"
        reader = ContainerReader(Engine(host, 10.0), None, node=node, local=False)
        tasks = len(reader.read())  # warm: the first read also inspects every task
        engine0, cpu0, wall0 = node_cpu_s(node), time.process_time(), time.perf_counter()
        for _ in range(READS):
            reader.read()
        wall = (time.perf_counter() - wall0) / READS
        agent_cpu = (time.process_time() - cpu0) / READS
        engine_cpu = (node_cpu_s(node) - engine0) / READS
        hand0 = node_cpu_s(node)
        for _ in range(READS):
            on(node, "stats", "--no-stream", "--format", "{{.ID}} {{.CPUPerc}}")
        by_hand = (node_cpu_s(node) - hand0) / READS
        ratio = engine_cpu / max(by_hand, 1e-9)
        print(
            f"  {node:<5} {tasks:>5} {agent_cpu * 1e3:>7.1f} ms {wall * 1e3:>5.0f} ms "
            f"{engine_cpu * 1e3:>8.1f} ms {by_hand * 1e3:>6.1f} ms {ratio:>6.2f}× "
            f"{engine_cpu / 60 * 100:>9.3f} %"
        )


def main() -> None:
    cluster = dict(line.split("=", 1) for line in swarm_sh("up").splitlines() if "=" in line)
    try:
        for node in ("mgr", "w1", "w2"):  # the same image under two names on every node
            on(node, "tag", "hosting-test/busybox:latest", "hosting-test/busybox:rollout-a")
            on(node, "tag", "hosting-test/busybox:latest", "hosting-test/busybox:rollout-b")
        folder = Path(cluster["SWARM_SHARED"]) / f"bench-{secrets.token_hex(3)}"
        folder.mkdir(parents=True)
        platform = "b" + secrets.token_hex(3)

        def write(image: str) -> None:
            text = SPEC.format(platform=platform, run=RUN, image=image, replicas=REPLICAS)
            (folder / "hosting.yaml").write_text(text)

        write("hosting-test/busybox:rollout-a")
        first = hosting(folder, "apply", "--yes")
        print(f"first apply ({REPLICAS} replicas, edge): {first:.1f} s")
        ctx = edge_context(platform, folder)
        host = names.hostname("acme", "shop", "web", "apps.localhost")
        ip = cluster["SWARM_MANAGER_IP"]

        write("hosting-test/busybox:rollout-b")
        load = Load(ip, ctx, host)
        rollout = hosting(folder, "apply", "--yes")
        load.stop()
        ours = (rollout, load.ok, load.failed)

        service = f"{platform}_acme_shop"
        load = Load(ip, ctx, host)
        start = time.perf_counter()
        on("mgr", "service", "update", "--detach=false", "--no-resolve-image", "-q",
           "--image", "hosting-test/busybox:rollout-a", service)  # fmt: skip
        by_hand = time.perf_counter() - start
        load.stop()
        theirs = (by_hand, load.ok, load.failed)

        print(f"\nrollout of a new image across {REPLICAS} replicas, under load through the edge")
        for label, (seconds, ok, failed) in (
            ("hosting apply", ours),
            ("docker service update", theirs),
        ):
            print(f"  {label:<24} {seconds:6.1f} s   requests {ok + failed}, failed {failed}")
        print(f"  ratio                    {ours[0] / theirs[0]:6.2f}×")
        agent_overhead_per_node()
        hosting(folder, "destroy", "--yes", "--delete-data")
    finally:
        swarm_sh("down")


if __name__ == "__main__":
    main()
