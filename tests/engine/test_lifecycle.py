"""One platform's life on the real engine, through the CLI: plan an empty stack, apply it,
plan again (nothing), change replicas, env and image under load, heal drift, destroy.

The tests run in file order and build on each other, as a user's session does.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

import hosting
from hosting.provider import firewall, volume_quota
from hosting.provider.blockdev import device_of
from hosting.spec import names
from hosting.stacks.containers import PIDS_LIMIT
from tests.conftest import require
from tests.docker_runtime.runtime import pids_max
from tests.engine.conftest import (
    PLATFORM,
    Project,
    api_context,
    changes,
    docker_names,
    edge_root_ca,
    https_get,
)

pytestmark = pytest.mark.engine

SPEC = (
    PLATFORM
    + """\
  acme:
    name: Acme
    email: a@acme.test
    plan: pro
    started: 2026-01-01
    deployments:
      site:
        type: web
        image: {image}
        port: 8080
        replicas: {replicas}
        env: {{GREETING: {greeting}}}
        secrets: {{SITE_TOKEN: {{env: SITE_TOKEN}}}}
        health: {{path: /healthz, interval_s: 1}}
      api:
        type: api
        build: {{context: ./api}}
        port: 8080
        env: {{DATABASE_URL: "${{main.url}}"}}
        health: {{path: /healthz, interval_s: 1}}
      main: {{type: database}}
"""
)

SITE_TOKEN = "site-token-7f3e9a1c55d2"


def write(project: Project, *, replicas: int = 2, greeting: str = "hello", image: str = "") -> None:
    project.write(
        SPEC.format(
            platform=project.platform,
            replicas=replicas,
            greeting=greeting,
            image=image or "hosting-test/busybox:latest",
        )
    )


def host(deployment: str, kind: str) -> str:
    return names.hostname("acme", deployment, kind, "apps.test")


def container(project: Project, deployment: str, replica: int = 0) -> str:
    return names.container_name(project.platform, "acme", deployment, replica)


def inspect(name: str) -> dict:  # type: ignore[type-arg]
    out = subprocess.run(["docker", "inspect", name], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]  # type: ignore[no-any-return]


def wait_healthy(name: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while (health := inspect(name)["State"].get("Health", {}).get("Status")) != "healthy":
        assert time.monotonic() < deadline, f"{name} is {health}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def lifecycle(project: Project) -> Project:
    project.env["SITE_TOKEN"] = SITE_TOKEN
    api_context(project.folder)
    return project


@contextmanager
def load(project: Project) -> Iterator[dict[str, int]]:
    """Requests to the site through the edge, over HTTPS, for as long as the block runs."""
    ctx = edge_root_ca(project.platform, project.folder)
    counts = {"ok": 0, "failed": 0}
    failures: list[str] = []
    stop = threading.Event()

    def loop() -> None:
        deadline = time.monotonic() + 600  # bounded, whatever happens to the test
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                status, _ = https_get(ctx, host("site", "web"))
                ok = status == 200
                if not ok:
                    failures.append(f"HTTP {status}")
            except OSError as exc:
                ok = False
                failures.append(repr(exc))
            counts["ok" if ok else "failed"] += 1
            time.sleep(0.02)

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    try:
        yield counts
    finally:
        stop.set()
        worker.join(timeout=30)
    assert counts["ok"] > 0
    assert counts["failed"] == 0, failures[:5]


def test_plan_on_an_empty_stack_exits_2_and_lists_creates_per_tenant(lifecycle: Project) -> None:
    write(lifecycle)
    code, plan = lifecycle.plan()
    assert code == 2
    acme = changes(plan)["acme"]
    assert {op for _, _, op in acme} == {"create"}
    created = {(dep, res) for dep, res, _ in acme}
    assert {("site", "acme_site_0"), ("site", "acme_site_1"), ("api", "acme_api_0")} <= created
    assert {("main", "acme_main_0"), ("main", "acme_main_data")} <= created
    assert docker_names("container", lifecycle.platform) == []  # a plan touches nothing


def test_apply_starts_everything_hardened_healthy_and_reachable(lifecycle: Project) -> None:
    out = lifecycle.ok("apply", "--yes")
    assert "Applied:" in out.stdout
    apps = [container(lifecycle, "site", i) for i in (0, 1)] + [container(lifecycle, "api")]
    db = container(lifecycle, "main")
    spec = hosting.load(lifecycle.folder / "hosting.yaml")
    disk_mbps = spec.limits_of(spec.tenants["acme"]).disk_io_mbps
    io_device = device_of(docker_root())
    for name in [*apps, db]:
        info = inspect(name)
        assert info["HostConfig"]["ReadonlyRootfs"] is True, name
        assert info["HostConfig"]["CapDrop"] == ["ALL"], name
        assert "no-new-privileges:true" in info["HostConfig"]["SecurityOpt"], name
        assert info["Config"]["Labels"]["hosting.tenant"] == "acme", name
        # The docker provider cannot set these: apply does, and the kernel's cgroup says so.
        assert pids_max(info["Id"]) == str(PIDS_LIMIT), name
        throttle = [{"Path": io_device, "Rate": disk_mbps * 1024 * 1024}]
        assert info["HostConfig"]["BlkioDeviceWriteBps"] == throttle, name
        assert info["HostConfig"]["BlkioDeviceReadBps"] == throttle, name
        wait_healthy(name)
    ctx = edge_root_ca(lifecycle.platform, lifecycle.folder)
    assert https_get(ctx, host("site", "web")) == (200, "ok\n")
    status, body = https_get(ctx, host("api", "api"), "/cgi-bin/db")
    assert status == 200 and body.strip() == f"db-ok:{names.database_name('main')}", body


def test_apply_bounds_the_database_volume_and_fences_the_tenant_bridge(lifecycle: Project) -> None:
    """As root, as CI applies: the database's volume binds a directory in the tenant's own
    filesystem of Pro's 50 GB, which apply mounted; the tenant's bridge is in this platform's
    INPUT and egress chains, jumped to from INPUT and DOCKER-USER."""
    require(os.geteuid() == 0, "root (apply mounts and sets iptables rules as root)")
    root = volume_quota.root_of(lifecycle.state_dir)
    volume = names.volume_name(lifecycle.platform, "acme", "main")
    options = json.loads(docker("volume", "inspect", volume))[0]["Options"]
    assert options == {"type": "none", "o": "bind", "device": str(root / "acme" / "main")}
    assert os.path.ismount(root / "acme")
    df = docker("exec", container(lifecycle, "main"), "df", "-Pk", "/var/lib/postgresql/data")
    total = int(df.splitlines()[-1].split()[1]) * 1024
    assert 0.9 * 50 * 2**30 < total <= 50 * 2**30  # Pro: 50 GB, GB = 2^30 bytes
    c = firewall.chains(lifecycle.platform)
    network = names.network_name(lifecycle.platform, "acme")
    bridge = firewall.bridge_of(json.loads(docker("network", "inspect", network))[0])
    rules = iptables_rules()
    assert f"-A {c.input} -i {bridge} -g {c.input_policy}" in rules
    assert f"-A {c.egress} -i {bridge} -g {c.egress_policy}" in rules
    comment = f'-m comment --comment "hosting {lifecycle.platform}"'
    assert f"-A INPUT {comment} -j {c.input}" in rules
    assert f"-A DOCKER-USER {comment} -j {c.egress}" in rules


def test_an_immediate_second_plan_has_no_changes(lifecycle: Project) -> None:
    code, plan = lifecycle.plan()
    assert code == 0, changes(plan)


def test_more_replicas_adds_only_a_container_with_no_failed_request(lifecycle: Project) -> None:
    write(lifecycle, replicas=3)
    code, plan = lifecycle.plan()
    assert code == 2
    assert changes(plan) == {"acme": {("site", "acme_site_2", "create")}}
    with load(lifecycle):
        lifecycle.ok("apply", "--yes")
        wait_healthy(container(lifecycle, "site", 2))
    assert lifecycle.plan()[0] == 0


def test_an_env_change_replaces_only_the_sites_containers_with_no_failed_request(
    lifecycle: Project,
) -> None:
    write(lifecycle, replicas=3, greeting="bonjour")
    code, plan = lifecycle.plan()
    assert code == 2
    assert {(dep, res) for dep, res, _ in changes(plan)["acme"]} == {
        ("site", f"acme_site_{i}") for i in range(3)
    }
    with load(lifecycle):
        lifecycle.ok("apply", "--yes")
    env = inspect(container(lifecycle, "site"))["Config"]["Env"]
    assert "GREETING=bonjour" in env
    assert lifecycle.plan()[0] == 0


def test_an_image_change_replaces_only_the_sites_containers_with_no_failed_request(
    lifecycle: Project,
) -> None:
    image = f"hosting-test/busybox-{lifecycle.platform}:v2"
    ctx = lifecycle.folder / "v2"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM hosting-test/busybox:latest\nCOPY version /www/version\n")
    (ctx / "version").write_text("v2\n")
    subprocess.run(["docker", "build", "-q", "-t", image, str(ctx)], check=True)
    try:
        write(lifecycle, replicas=3, greeting="bonjour", image=image)
        code, plan = lifecycle.plan()
        assert code == 2
        site = {res for dep, res, _ in changes(plan)["acme"] if dep == "site"}
        assert {f"acme_site_{i}" for i in range(3)} <= site
        assert set(changes(plan)) == {"acme"}
        with load(lifecycle):
            lifecycle.ok("apply", "--yes")
        tls = edge_root_ca(lifecycle.platform, lifecycle.folder)
        assert https_get(tls, host("site", "web"), "/version") == (200, "v2\n")
        assert lifecycle.plan()[0] == 0
    finally:
        write(lifecycle, replicas=3, greeting="bonjour")
        lifecycle.ok("apply", "--yes")
        subprocess.run(["docker", "rmi", "-f", image], capture_output=True)


def test_drift_is_seen_by_diff_refresh_and_plan_and_healed_by_apply(lifecycle: Project) -> None:
    clean = lifecycle.run("diff", "--detailed-exitcode")
    assert clean.returncode == 0, clean.stderr
    assert "No drift" in clean.stdout
    gone = container(lifecycle, "site", 1)
    subprocess.run(["docker", "rm", "-f", gone], check=True, capture_output=True)
    drift = lifecycle.run("diff", "--json", "--detailed-exitcode")
    assert drift.returncode == 2, drift.stderr
    found = json.loads(drift.stdout)["resources"]
    assert {"resource": "acme_site_1", "drift": "gone"}.items() <= found[0].items(), found
    assert len(found) == 1
    assert lifecycle.run("diff", "--detailed-exitcode").returncode == 2  # diff changed no state
    code, plan = lifecycle.plan()
    assert code == 2
    assert ("site", "acme_site_1", "create") in changes(plan)["acme"]
    refreshed = lifecycle.ok("refresh")
    assert "Refreshed: 1 resources differed" in refreshed.stdout, refreshed.stdout
    lifecycle.ok("apply", "--yes")
    wait_healthy(gone)
    assert lifecycle.plan()[0] == 0


def test_destroy_keeps_data_volumes_and_delete_data_removes_them(lifecycle: Project) -> None:
    volumes = docker_names("volume", lifecycle.platform)
    data = names.volume_name(lifecycle.platform, "acme", "main")
    assert data in volumes
    as_root = os.geteuid() == 0  # apply mounted the databases' filesystems and set iptables
    image = volume_quota.image_path(volume_quota.root_of(lifecycle.state_dir), "acme")
    chains = firewall.chains(lifecycle.platform).all()
    lifecycle.ok("destroy", "--yes")
    assert docker_names("container", lifecycle.platform) == []
    kept = docker_names("volume", lifecycle.platform)
    assert data in kept and any("edge" in v for v in kept), kept
    if as_root:  # the last tenant network gone: no chain left; the image kept, unmounted
        assert not any(chain in rule for rule in iptables_rules() for chain in chains)
        assert image.is_file() and not os.path.ismount(image.with_suffix(""))
    # the database comes back with its data (apply mounts its filesystem again): the same
    # password still opens it
    lifecycle.ok("apply", "--yes")
    wait_healthy(container(lifecycle, "main"))
    status, body = https_get(
        edge_root_ca(lifecycle.platform, lifecycle.folder), host("api", "api"), "/cgi-bin/db"
    )
    assert status == 200 and body.strip() == f"db-ok:{names.database_name('main')}", body
    lifecycle.ok("destroy", "--yes", "--delete-data")
    assert docker_names("container", lifecycle.platform) == []
    assert docker_names("volume", lifecycle.platform) == []
    assert docker_names("network", lifecycle.platform) == []
    if as_root:
        assert not image.exists() and not image.with_suffix("").exists()
        assert not any(chain in rule for rule in iptables_rules() for chain in chains)


def docker(*args: str) -> str:
    out = subprocess.run(["docker", *args], capture_output=True, text=True, check=True)
    return out.stdout


def iptables_rules() -> list[str]:
    out = subprocess.run(["iptables", "-S"], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def docker_root() -> str:
    out = subprocess.run(
        ["docker", "info", "-f", "{{.DockerRootDir}}"], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()
