"""A new image rolled out across 10 replicas on the swarm target (issue 11), under a request
loop through the edge, on the 3-node test swarm (.ci/swarm.sh).

1. `hosting apply` of a spec whose only change is the image: wall time until apply returns
   (every task replaced, one at a time, start-first, each watched before the next), and the
   failed requests meanwhile (the aim: none).
   Baseline: the same rollout by hand, `docker service update --image` of the same service
   (Swarm's own rolling update with the same settings, waited for with --detach=false).
   The ratio is what hosting's path (the engine's refresh, diff and convergence polling)
   costs over Swarm doing the same work.

Agent overhead per node is not measured: the agent meters only its own engine's tasks (the
swarm's other nodes are not metered yet; see README, "The swarm target").

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
        hosting(folder, "destroy", "--yes", "--delete-data")
    finally:
        swarm_sh("down")


if __name__ == "__main__":
    main()
