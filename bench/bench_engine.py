"""plan and apply on the real engine (issue 10), each printed with a baseline from the same run.

1. apply of the example hosting.yaml from an empty stack.
   Baseline: the same containers and networks made with plain `docker` commands (the floor).
2. a no-op plan of the example. Baseline: `hosting validate` of the same file (no engine).
3. a no-op plan of 200 deployments (20 tenants × 10 web apps).
   Baseline: the example's no-op plan (ratio = growth from 13 to 200 deployments).
4. cold start to healthy: from `docker start` of a stopped container to the first answer (the
   app through the edge, the database to `pg_isready`). Baseline: `docker run --rm … true`.
   Product document: web 5 s, API 3 s, database 8 s; aim 1 s, 1 s, 2 s.

Needs the engine (`hosting engine build`, HOSTING_ENGINE_DIR), a Docker engine with the local
images (.ci/services.sh) and ports 80/443 free. Everything it makes is removed at the end.
Run: python bench/bench_engine.py   (BENCH_SKIP_200=1 leaves out measure 3)
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from hosting.spec import loads, names
from hosting.stacks.desired import desired_containers
from hosting.stacks.settings import default_settings

REPO = Path(__file__).resolve().parent.parent
ENV = {
    "HOSTING_PASSPHRASE": "bench-passphrase",
    "SHOP_SESSION_KEY": "bench-session",
    "UMBRELLA_PAYMENTS_TOKEN": "bench-token",
}


def hosting(folder: Path, *args: str) -> float:
    start = time.perf_counter()
    out = subprocess.run(
        ["python3", "-m", "hosting", *args],
        cwd=folder,
        env={**os.environ, **ENV},
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if out.returncode not in (0, 2):
        raise SystemExit(f"hosting {' '.join(args)} failed:\n{out.stderr}")
    return elapsed


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def example_project(platform: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    spec = (REPO / "hosting.yaml").read_text().replace("name: demo ", f"name: {platform} ")
    (folder / "hosting.yaml").write_text(spec)
    shutil.copytree(REPO / "examples", folder / "examples")
    return folder


def docker_floor(folder: Path, platform: str) -> float:
    """The example's containers made by hand: network create + docker run, one by one."""
    spec = loads((folder / "hosting.yaml").read_text())
    settings = default_settings(spec, base_dir=folder)
    desired = desired_containers(spec, settings)
    apps = [c for replicas in desired.apps.values() for c in replicas]
    dbs = [c for c in desired.databases.values() if c is not None]
    start = time.perf_counter()
    for tenant in spec.tenants:
        docker("network", "create", f"floor{names.network_name(platform, tenant)}")
    for c in [*apps, *dbs]:
        image = c.image if docker_has(c.image) else "hosting-test/busybox:latest"
        docker("run", "-d", "--name", f"floor{c.name}", image, "sleep", "600")
    elapsed = time.perf_counter() - start
    for c in [*apps, *dbs]:
        subprocess.run(["docker", "rm", "-f", f"floor{c.name}"], capture_output=True)
    for tenant in spec.tenants:
        subprocess.run(
            ["docker", "network", "rm", f"floor{names.network_name(platform, tenant)}"],
            capture_output=True,
        )
    return elapsed


def docker_has(image: str) -> bool:
    return (
        subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode == 0
    )


def big_project(platform: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="bench-engine-200-"))
    tenants = {
        f"t{t:02d}": {
            "name": f"Tenant {t}",
            "email": f"t{t}@example.test",
            "plan": "enterprise",
            "started": "2026-01-01",
            "limits": {"cpus": 1, "memory_mb": 256, "disk_io_mbps": 100, "network_mbps": 100},
            "deployments": {
                f"web{i}": {"type": "web", "image": "hosting-test/busybox:latest", "port": 8080}
                for i in range(10)
            },
        }
        for t in range(20)
    }
    doc = {
        "version": 1,
        "platform": {
            "name": platform,
            "domain": "apps.test",
            "public_ipv4": "127.0.0.1",
            "images": {
                "proxy": "hosting-test/caddy:latest",
                "postgres": "hosting-test/postgres:15",
            },
        },
        "tenants": tenants,
    }
    (folder / "hosting.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return folder


def until(check: Callable[[], bool], timeout_s: float = 120) -> float:
    start = time.perf_counter()
    while not check():
        if time.perf_counter() - start > timeout_s:
            raise SystemExit("timed out waiting for a cold start")
        time.sleep(0.02)
    return time.perf_counter() - start


def edge_answers(ctx: ssl.SSLContext, host: str, path: str) -> bool:
    try:
        with (
            socket.create_connection(("127.0.0.1", 443), timeout=2) as raw,
            ctx.wrap_socket(raw, server_hostname=host) as tls,
        ):
            tls.sendall(
                f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
            )
            return tls.recv(64).split(b" ")[1:2] == [b"200"]
    except OSError:
        return False


def cold_start(folder: Path, platform: str, tenant: str, dep: str, kind: str) -> float:
    name = names.container_name(platform, tenant, dep)
    prefix = name.rsplit("_", 1)[0] + "_"
    replicas = [n for n in docker("ps", "--format", "{{.Names}}").split() if n.startswith(prefix)]
    docker("stop", "-t", "1", *replicas)  # every replica: one left running would answer
    docker("start", *replicas)
    start = time.perf_counter()
    if kind == "database":
        user = ensure_database_user(name)
        until(
            lambda: (
                subprocess.run(
                    ["docker", "exec", name, "pg_isready", "-q", "-h", "127.0.0.1", "-U", user],
                    capture_output=True,
                ).returncode
                == 0
            )
        )
    else:
        pem = folder / "root.crt"
        src = f"{names.edge_name(platform)}:/data/caddy/pki/authorities/local/root.crt"
        docker("cp", src, str(pem))
        ctx = ssl.create_default_context(cafile=str(pem))
        host = names.hostname(tenant, dep, kind, "apps.localhost")
        path = "/cgi-bin/health" if kind == "api" else "/"
        until(lambda: edge_answers(ctx, host, path))
    return time.perf_counter() - start


def ensure_database_user(container: str) -> str:
    env = docker("inspect", "-f", "{{range .Config.Env}}{{println .}}{{end}}", container)
    return next(v.split("=", 1)[1] for v in env.splitlines() if v.startswith("POSTGRES_USER="))


def row(label: str, seconds: float, base: float, note: str = "") -> None:
    print(f"| {label} | {seconds:.2f} s | {seconds / base:.1f}× {note}|")


def main() -> None:
    platform = "bench" + secrets.token_hex(2)
    folder = example_project(platform)
    big = big_project(platform + "b")
    try:
        print("| measure | time | vs baseline |\n|---|---|---|")
        floor = docker_floor(folder, platform)
        row("example's containers by hand, `docker run` (baseline)", floor, floor)
        apply_s = hosting(folder, "apply", "--yes")
        row("`apply` of the example from empty", apply_s, floor)
        validate_s = hosting(folder, "validate")
        row("`validate` of the example (baseline)", validate_s, validate_s)
        noop_s = min(hosting(folder, "plan", "--detailed-exitcode") for _ in range(3))
        row("no-op `plan` of the example (best of 3)", noop_s, validate_s)
        floor_run = time.perf_counter()
        docker("run", "--rm", "hosting-test/busybox:latest", "true")
        floor_run = time.perf_counter() - floor_run
        row("`docker run --rm busybox true` (baseline)", floor_run, floor_run)
        for tenant, dep, kind, target in (
            ("acme", "shop", "web", "aim 1 s, promise 5 s"),
            ("acme", "api", "api", "aim 1 s, promise 3 s"),
            ("acme", "main", "database", "aim 2 s, promise 8 s"),
        ):
            seconds = cold_start(folder, platform, tenant, dep, kind)
            row(f"cold start to healthy: {kind} ({target})", seconds, floor_run)
        # One edge per host owns ports 80/443: the example goes before the big one comes.
        hosting(folder, "destroy", "--yes", "--delete-data")
        if not os.environ.get("BENCH_SKIP_200"):
            big_apply = hosting(big, "apply", "--yes")
            print(f"| `apply` of 200 deployments from empty (not a target) | {big_apply:.1f} s | |")
            big_noop = min(hosting(big, "plan", "--detailed-exitcode") for _ in range(2))
            row("no-op `plan` of 200 deployments (best of 2)", big_noop, noop_s, "vs example ")
    finally:
        hosting(folder, "destroy", "--yes", "--delete-data")
        if not os.environ.get("BENCH_SKIP_200"):
            hosting(big, "destroy", "--yes", "--delete-data")
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(big, ignore_errors=True)


if __name__ == "__main__":
    main()
