"""Connection setup through the pooler (issue 12), as a ratio to setting up the same
connections straight to the server, measured in the same run.

Measured: BENCH_CONNECTIONS (default 300) times connect, `SELECT 1`, close, through the
database's PgBouncer (transaction mode, SCRAM pass-through), one after the other; then the
same number at once from BENCH_THREADS threads (default 50).
Baseline: the same, straight to the PostgreSQL server (a new backend process per connection).
Both sides pay the client's SCRAM work (PBKDF2, 4,096 rounds); the pooler saves the server's
fork and its own SCRAM exchange, since a pooled server connection is already logged in.

Run: python bench/bench_pooling.py   (needs Docker and the local images
hosting-test/postgres:15 and hosting-test/pgbouncer:latest, from .ci/images.sh)
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import psycopg

from hosting.provider.poolers import sync_verifiers
from hosting.spec import loads, names
from hosting.stacks.containers import ContainerSpec, labels, write_host_files
from hosting.stacks.desired import desired_containers
from hosting.stacks.pooler import POOLER_PORT
from hosting.stacks.settings import ProgramSettings, ensure_databases

COUNT = int(os.environ.get("BENCH_CONNECTIONS", "300"))
THREADS = int(os.environ.get("BENCH_THREADS", "50"))
SPEC = """
version: 1
platform:
  name: {platform}
  domain: apps.test
  public_ipv4: 127.0.0.1
  images: {{postgres: "hosting-test/postgres:15", pgbouncer: "hosting-test/pgbouncer:latest"}}
tenants:
  acme:
    name: Acme
    email: a@acme.test
    plan: pro
    started: 2026-01-01
    deployments:
      main: {{type: database, pooling: true}}
"""


def docker(*args: str) -> str:
    out = subprocess.run(["docker", *args], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def start(spec: ContainerSpec) -> str:
    write_host_files(spec)
    docker("create", *spec.docker_run_args())
    docker("start", spec.name)
    for _ in range(240):
        state = json.loads(docker("inspect", spec.name))[0]["State"]
        if state.get("Health", {}).get("Status") == "healthy":
            nets = json.loads(docker("inspect", spec.name))[0]["NetworkSettings"]["Networks"]
            return str(next(iter(nets.values()))["IPAddress"])
        time.sleep(0.5)
    raise SystemExit(f"{spec.name} did not become healthy")


def setups(dsn: str, count: int, threads: int) -> float:
    def one(_: int) -> None:
        with psycopg.connect(dsn) as conn:
            conn.execute("SELECT 1").fetchone()

    one(0)  # warm: the pooler's first server connection, the server's caches
    t0 = time.perf_counter()
    if threads == 1:
        for i in range(count):
            one(i)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(one, range(count)))
    return time.perf_counter() - t0


def main() -> None:
    platform = "b" + secrets.token_hex(4)
    spec = loads(SPEC.format(platform=platform))
    with tempfile.TemporaryDirectory() as tmp:
        settings = ProgramSettings(
            databases=ensure_databases(spec, {}), state_dir=Path(tmp), base_dir=Path(tmp)
        )
        desired = desired_containers(spec, settings)
        server, pooler = desired.databases[("acme", "main")], desired.poolers[("acme", "main")]
        assert server is not None
        server = replace(server, ports=())  # nothing published on the host
        network = names.network_name(platform, "acme")
        label_args = [
            a for k, v in labels("acme", "", "network").items() for a in ("--label", f"{k}={v}")
        ]
        docker("network", "create", *label_args, network)
        try:
            server_ip = start(server)
            pooler_ip = start(pooler)
            assert sync_verifiers(spec, settings) == []
            access = settings.databases["acme/main"]

            def dsn(host: str, port: int) -> str:
                return psycopg.conninfo.make_conninfo(
                    host=host, port=port, user=access.login,
                    password=access.current_password, dbname=names.database_name("main"),
                )  # fmt: skip

            print(f"{COUNT} connection setups (connect, SELECT 1, close); ratio = direct / pooled")
            for label, threads in (("one after the other", 1), (f"{THREADS} threads", THREADS)):
                direct = setups(dsn(server_ip, 5432), COUNT, threads)
                pooled = setups(dsn(pooler_ip, POOLER_PORT), COUNT, threads)
                print(
                    f"  {label:>20}: direct {direct / COUNT * 1000:6.2f} ms each, "
                    f"pooled {pooled / COUNT * 1000:6.2f} ms each, {direct / pooled:4.2f}×"
                )
        finally:
            for name in (pooler.name, server.name):
                subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True)
            subprocess.run(["docker", "network", "rm", network], capture_output=True)
            subprocess.run(
                ["docker", "volume", "rm", names.volume_name(platform, "acme", "main")],
                capture_output=True,
            )


if __name__ == "__main__":
    main()
