"""`platform.target: swarm` through the real Pulumi engine, on the 3-node test swarm.

What this kernel lacks decides two settings (README, "The swarm test cluster"): no ESP, so
tenant overlays are not encrypted here, and no IPVS, so services run in DNS round-robin mode
and the edge resolves each task's address.
"""

from __future__ import annotations

import json
import re
import secrets
import ssl
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import hosting
from tests.engine.conftest import PASSPHRASE, Project, engine, https_get  # noqa: F401 (a fixture)
from tests.swarm.cluster import Swarm, wait_for

pytestmark = [pytest.mark.engine, pytest.mark.swarm]

WHOAMI = (
    "mkdir -p /tmp/www && cp -r /www/. /tmp/www/ && hostname > /tmp/www/whoami "
    "&& exec httpd -f -p 8080 -h /tmp/www"
)

SPEC = """
version: 1
platform:
  name: {platform}
  domain: apps.localhost
  public_ipv4: 127.0.0.1
{swarm_platform}tenants:
  acme:
    name: Acme
    email: a@example.test
    plan: starter
    started: 2026-01-01
    deployments:
      shop:
        type: web
        image: hosting-test/busybox:latest
        port: 8080
        replicas: {shop_replicas}
        # Each task answers /whoami with its own hostname (its container's id).
        command: ["sh", "-c", "{whoami}"]
        health: {{path: /healthz, interval_s: 2}}
      main:
        type: database
  globex:
    name: Globex
    email: g@example.test
    plan: starter
    started: 2026-01-01
    deployments:
      portal:
        type: web
        image: hosting-test/busybox:latest
        port: 8080
        health: {{path: /healthz, interval_s: 2}}
"""


def spec_text(platform: str, swarm: Swarm, shop_replicas: object) -> str:
    return SPEC.format(
        platform=platform,
        swarm_platform=swarm.platform_lines(),
        shop_replicas=shop_replicas,
        whoami=WHOAMI,
    )


@pytest.fixture(scope="module")
def project(engine: str, swarm: Swarm) -> Iterator[Project]:  # noqa: F811
    shared = Path(swarm.manager_host.removeprefix("unix://")).parent.parent / "shared"
    folder = shared / f"project-{secrets.token_hex(3)}"
    folder.mkdir(parents=True)
    platform = "s" + secrets.token_hex(3)
    # The database's node, and its image there only (the others never run it).
    swarm.docker("node", "update", "--label-add", "hosting.db=true", "w1")
    with subprocess.Popen(
        ["docker", "save", "hosting-test/postgres:15"], stdout=subprocess.PIPE
    ) as save:
        load = subprocess.run(
            ["docker", "-H", swarm.hosts["w1"], "load", "-q"],
            stdin=save.stdout,
            capture_output=True,
        )
    assert save.returncode == 0 and load.returncode == 0, load.stderr
    proj = Project(folder, platform, {"HOSTING_PASSPHRASE": PASSPHRASE})
    proj.write(spec_text(platform, swarm, 3))
    try:
        yield proj
    finally:
        proj.run("destroy", "--yes", "--delete-data")


def edge_get(swarm: Swarm, ctx: ssl.SSLContext, host: str, path: str) -> tuple[int, str]:
    """GET through the edge on the manager node's 443 (published in host mode)."""
    return https_get(ctx, host, path, address=swarm.manager_ip)


def edge_ca(swarm: Swarm, platform: str, folder: Path) -> ssl.SSLContext:
    """Trust exactly the edge's internal CA, read from its task's data volume on the manager."""
    pem = folder / "root.crt"

    def copied() -> bool:
        ids = swarm.docker("ps", "-q", "-f", f"name={platform}_edge").stdout.split()
        if not ids:
            return False
        source = f"{ids[0]}:/data/caddy/pki/authorities/local/root.crt"
        done = swarm.docker("cp", source, str(pem), check=False)
        return done.returncode == 0 and "BEGIN CERTIFICATE" in pem.read_text()

    wait_for("the edge's root certificate", copied, timeout=120)
    return ssl.create_default_context(cafile=str(pem))


def hostname_of(project: Project, ref: str) -> str:
    shown = json.loads(project.ok("status", "--json").stdout)
    [row] = [d for d in shown["deployments"] if f"{d['tenant']}/{d['deployment']}" == ref]
    return str(row["urls"][0]).removeprefix("https://")


def task_nodes(swarm: Swarm, service: str) -> dict[str, str]:
    """container hostname (12-hex id) → node, for the service's running tasks."""
    out: dict[str, str] = {}
    for task, node, _ in swarm.running_tasks(service):
        where, container = swarm.task_container(task)
        assert where == node
        out[container[:12]] = node
    return out


def test_apply_runs_the_example_as_services_across_nodes(project: Project, swarm: Swarm) -> None:
    started = time.monotonic()
    project.ok("apply", "--yes")
    print(f"\nswarm apply: {time.monotonic() - started:.1f} s")
    p = project.platform
    listed = swarm.docker("service", "ls", "--format", "{{.Name}}").stdout.split()
    assert {f"{p}_acme_shop", f"{p}_acme_main", f"{p}_globex_portal", f"{p}_edge"} <= set(listed)
    wait_for("shop's 3 tasks running", lambda: swarm.converged(f"{p}_acme_shop", 3))
    nodes = task_nodes(swarm, f"{p}_acme_shop")
    assert len(set(nodes.values())) > 1, nodes  # spread over more than one node
    # what a service cannot say, each node's engine sets (README: "Swarm target")
    for container, node in nodes.items():
        status = swarm.docker("exec", container, "cat", "/proc/1/status", node=node).stdout
        assert re.search(r"(?m)^NoNewPrivs:\s+1$", status), (node, status)
        limits = swarm.docker("exec", container, "cat", "/proc/1/limits", node=node).stdout
        assert re.search(r"(?m)^Max open files\s+8192\s+8192\b", limits), (node, limits)
        assert re.search(r"(?m)^Max processes\s+512\s+512\b", limits), (node, limits)
    # the database runs on the labelled node, its password only in a secret file
    wait_for("main running", lambda: swarm.converged(f"{p}_acme_main", 1))
    [(_, db_node, _)] = swarm.running_tasks(f"{p}_acme_main")
    assert db_node == "w1"
    spec = json.loads(swarm.docker("service", "inspect", f"{p}_acme_main").stdout)[0]["Spec"]
    env = spec["TaskTemplate"]["ContainerSpec"]["Env"]
    assert "POSTGRES_PASSWORD_FILE=/run/secrets/POSTGRES_PASSWORD" in env
    assert not [e for e in env if e.startswith("POSTGRES_PASSWORD=")]
    shown = json.loads(project.ok("status", "--json").stdout)
    states = {
        (d["tenant"], d["deployment"]): (d["status"], d["replicas_running"])
        for d in shown["deployments"]
    }
    assert states[("acme", "shop")] == ("running", 3)


def test_requests_through_the_edge_reach_tasks_on_several_nodes(
    project: Project, swarm: Swarm, tmp_path: Path
) -> None:
    ctx = edge_ca(swarm, project.platform, tmp_path)
    host = hostname_of(project, "acme/shop")
    nodes = task_nodes(swarm, f"{project.platform}_acme_shop")
    served: Counter[str] = Counter()
    failed = 0
    for _ in range(60):
        code, body = edge_get(swarm, ctx, host, "/whoami")
        if code != 200:
            failed += 1
            continue
        served[nodes.get(body.strip(), "unknown")] += 1
    print(f"\nrequests through the edge by node: {dict(served)}, failed {failed}")
    assert failed == 0
    assert "unknown" not in served
    assert len(served) > 1, served  # answered from more than one node


def test_a_second_plan_after_apply_changes_nothing(project: Project) -> None:
    code, plan = project.plan()
    assert code == 0, json.dumps(plan)[:3000]


class Load:
    """A request loop through the edge in a thread: (seconds since start, ok) per request."""

    def __init__(self, swarm: Swarm, ctx: ssl.SSLContext, host: str) -> None:
        self.results: list[tuple[float, bool]] = []
        self._stop = threading.Event()
        self._started = time.monotonic()

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    ok = edge_get(swarm, ctx, host, "/healthz")[0] == 200
                except OSError:
                    ok = False
                self.results.append((time.monotonic() - self._started, ok))
                time.sleep(0.05)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def now(self) -> float:
        return time.monotonic() - self._started

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    def failed(self, after: float = 0.0, before: float = float("inf")) -> int:
        return sum(1 for t, ok in self.results if not ok and after <= t < before)

    def count(self, after: float = 0.0) -> int:
        return sum(1 for t, _ in self.results if t >= after)


def test_a_bad_image_rolls_back_by_itself(project: Project, swarm: Swarm, tmp_path: Path) -> None:
    ctx = edge_ca(swarm, project.platform, tmp_path)
    host = hostname_of(project, "acme/shop")
    good = (project.folder / "hosting.yaml").read_text()
    bad = good.replace(
        "image: hosting-test/busybox:latest\n        port: 8080\n        replicas: 3",
        "image: hosting-test/no-such-image:1\n        port: 8080\n        replicas: 3",
    )
    assert bad != good
    project.write(bad)
    load = Load(swarm, ctx, host)
    try:
        out = project.run("apply", "--yes")
    finally:
        load.stop()
        project.write(good)
    assert out.returncode != 0
    assert "rollback" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    service = f"{project.platform}_acme_shop"
    image = swarm.docker(
        "service", "inspect", service, "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}"
    ).stdout.strip()
    assert image == "hosting-test/busybox:latest"
    wait_for("shop back at 3 tasks", lambda: swarm.converged(service, 3))
    print(
        f"\nbad image: {len(load.results)} requests during the failed update, "
        f"{load.failed()} failed"
    )
    assert load.failed() == 0


def test_a_lost_worker_is_survived(project: Project, swarm: Swarm, tmp_path: Path) -> None:
    ctx = edge_ca(swarm, project.platform, tmp_path)
    host = hostname_of(project, "acme/shop")
    service = f"{project.platform}_acme_shop"
    on = {node for _, node, _ in swarm.running_tasks(service)}
    victim = "w2" if "w2" in on else "w1"  # a worker running a shop task
    load = Load(swarm, ctx, host)
    try:
        time.sleep(3)
        killed = load.now()
        swarm.stop(victim)

        def rescheduled() -> bool:
            tasks = swarm.running_tasks(service)
            return len(tasks) == 3 and all(
                n != victim and state == "Running" for _, n, state in tasks
            )

        wait_for(f"shop's tasks off {victim}", rescheduled, timeout=180)
        moved = load.now()
        time.sleep(10)  # requests after rescheduling: none may fail
    finally:
        load.stop()
        swarm.start(victim)
    print(
        f"\nworker {victim} killed at {killed:.1f} s, tasks rescheduled at {moved:.1f} s; "
        f"requests {len(load.results)}, failed {load.failed()} "
        f"(before the kill {load.failed(before=killed)}, until rescheduled "
        f"{load.failed(killed, moved)}, after {load.failed(after=moved)} of {load.count(moved)})"
    )
    assert load.failed(before=killed) == 0
    assert load.count(moved) > 0 and load.failed(after=moved) == 0


def test_the_autoscaler_scales_within_bounds_and_plan_leaves_it(
    project: Project, swarm: Swarm
) -> None:
    """The agent's autoscale job against the real manager, fed CPU samples in the store, so
    each step's numbers are known (test_metering_on_swarm.py scales on a real CPU load)."""
    import duckdb

    from hosting.metering.autoscale import run_autoscaler
    from hosting.metering.engine import Engine

    project.write(
        spec_text(project.platform, swarm, "{min: 1, max: 3, cpu_target: 50, cooldown_s: 30}")
    )
    project.ok("apply", "--yes")
    service = f"{project.platform}_acme_shop"
    store = project.state_dir / "hosting.duckdb"
    spec = hosting.load(project.folder / "hosting.yaml")
    engine_api = Engine(swarm.manager_host)

    def samples(cpu: float, at: datetime) -> None:
        rows = [
            (f"t-{at.timestamp()}-{i}", "acme", "shop", at - timedelta(seconds=30 * i), cpu)
            for i in range(3)
        ]
        with duckdb.connect(str(store)) as conn:
            conn.executemany(
                'INSERT INTO deployment_metrics (event_id, tenant, deployment, "timestamp", '
                "cpu_usage) VALUES (?, ?, ?, ?, ?)",
                rows,
            )

    def replicas() -> int:
        out = swarm.docker(
            "service", "inspect", service, "--format", "{{.Spec.Mode.Replicated.Replicas}}"
        )
        return int(out.stdout)

    t0 = datetime.now(UTC).replace(tzinfo=None)
    # 3 replicas of a 1-CPU plan at 15 % of a core together: 5 % each, far below 50 → min 1
    # 3 after the earlier tests (the live count is the agent's); run alone, a new autoscaled
    # service starts at min: scaled to 3 by hand, so every run starts from the same place
    swarm.docker("service", "scale", "-d", f"{service}=3")
    samples(15.0, t0)
    [down] = run_autoscaler(spec, store, engine_api, now=t0.replace(tzinfo=UTC))
    assert (down.from_replicas, down.to_replicas) == (3, 1) and replicas() == 1
    code, plan = project.plan()
    assert code == 0, json.dumps(plan)[:2000]  # the program does not fight the autoscaler
    # busy: 1 replica at 100 % of its core, twice the target → ceil(1 × 100 / 50) = 2; but
    # within the cooldown nothing happens
    later = t0 + timedelta(seconds=10)
    samples(100.0, later)
    assert run_autoscaler(spec, store, engine_api, now=later.replace(tzinfo=UTC)) == []
    after = t0 + timedelta(seconds=31)
    samples(250.0, after)  # 250 % of a core on 1 replica: ceil(250 / 50) = 5 → capped at max 3
    [up] = run_autoscaler(spec, store, engine_api, now=after.replace(tzinfo=UTC))
    assert (up.from_replicas, up.to_replicas) == (1, 3) and replicas() == 3
    wait_for("3 tasks after scaling up", lambda: swarm.converged(service, 3))
    shown = json.loads(project.ok("status", "--json").stdout)
    [row] = shown["scaling"]
    assert [(e["from"], e["to"]) for e in row["events"]] == [(1, 3), (3, 1)]
    code, plan = project.plan()
    assert code == 0, json.dumps(plan)[:2000]


def test_tenants_cannot_reach_each_other_across_nodes(project: Project, swarm: Swarm) -> None:
    p = project.platform
    shop = swarm.running_tasks(f"{p}_acme_shop")
    [(portal, portal_node, _)] = swarm.running_tasks(f"{p}_globex_portal")
    # a shop task on another node than the portal's, and one more shop task to compare
    target = next(t for t, n, _ in shop if n != portal_node)
    peer = next(t for t, _, _ in shop if t != target)
    shop_ip = swarm.task_ip(target, f"{p}_acme")

    def http_from(task: str, ip: str) -> bool:
        node, container = swarm.task_container(task)
        probe = ["sh", "-c", f'printf "GET /healthz HTTP/1.0\\r\\n\\r\\n" | nc -w 3 {ip} 8080']
        done = swarm.docker("exec", container, *probe, node=node, check=False)
        return done.returncode == 0 and " 200 OK" in done.stdout

    assert http_from(peer, shop_ip)  # its own network: reachable (the probe works)
    assert not http_from(portal, shop_ip)  # another tenant's: not


def test_destroy_removes_every_service(project: Project, swarm: Swarm) -> None:
    """Last in this file: the fixture's own destroy then has nothing left to do. The shop's
    httpd runs as PID 1 of its task and ignores SIGTERM: without an init to pass the signal
    on, its containers outlived the provider's wait and destroy failed."""
    assert swarm.running_tasks(f"{project.platform}_acme_shop"), "no shop task to stop"
    started = time.monotonic()
    project.ok("destroy", "--yes", "--delete-data")
    print(f"\nswarm destroy: {time.monotonic() - started:.1f} s")
    listed = swarm.docker("service", "ls", "--format", "{{.Name}}").stdout.split()
    assert not [s for s in listed if s.startswith(f"{project.platform}_")], listed
