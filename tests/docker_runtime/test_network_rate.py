"""The plan's network rate, both ways, measured with iperf3 on real containers.

One tenant per plan, each running iperf3's server in the app container `desired_containers`
declares for it (the plan's CPU and memory included), on its own platform bridge. The client
is the host's iperf3, talking to the container's bridge address: nothing leaves the machine.
Before shaping the same transfer runs at least twice the plan's rate, so the shaped
measurement within ±15 % is the shaping at work, not the machine's speed. iperf3 counts TCP
payload while tbf counts whole frames, so a shaped run reads about 4 % under the rate.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from hosting.metering.agent import Agent
from hosting.provider import netshape
from hosting.spec import loads
from hosting.spec.models import Spec
from hosting.stacks.containers import ContainerSpec, labels
from hosting.stacks.desired import desired_containers
from hosting.stacks.settings import ProgramSettings, ensure_databases
from tests.conftest import require
from tests.docker_runtime.runtime import Engine, docker

pytestmark = [pytest.mark.docker, pytest.mark.root]

IPERF_IMAGE = "hosting-test/iperf3:latest"  # Debian's iperf3 (.ci/images.sh)
PLANS = {"free": 10, "starter": 100, "pro": 500}  # the product document's Mbps per plan

SPEC = """
version: 1
platform:
  name: {platform}
  domain: apps.test
  public_ipv4: 127.0.0.1
  images: {{proxy: "hosting-test/caddy:latest", postgres: "hosting-test/postgres:15"}}
tenants:
"""
TENANT = """
  {plan}:
    name: {plan}
    email: t@{plan}.test
    plan: {plan}
    started: 2026-01-01
    deployments:
      app: {{type: api, image: "{image}", port: 5201}}
"""


def make_spec(platform: str, plans: dict[str, str], image: str = IPERF_IMAGE) -> Spec:
    """Tenants named by key, each on the plan given."""
    text = SPEC.format(platform=platform)
    for tenant, plan in plans.items():
        text += TENANT.format(plan=plan, image=image).replace(f"  {plan}:\n", f"  {tenant}:\n", 1)
    return loads(text)


@dataclass
class Shaped:
    spec: Spec
    engine: Engine
    apps: dict[str, ContainerSpec]  # tenant (= plan) → its app container


def app_containers(spec: Spec, tmp: Path) -> dict[str, ContainerSpec]:
    settings = ProgramSettings(databases=ensure_databases(spec, {}), state_dir=tmp, base_dir=tmp)
    desired = desired_containers(spec, settings)
    return {
        tenant: replace(replicas[0], health=None, command=("/usr/bin/iperf3", "-s"))
        for (tenant, _), replicas in desired.apps.items()
    }


def address(name: str) -> str:
    networks = json.loads(docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", name))
    return str(next(iter(networks.values()))["IPAddress"])


def iperf_mbps(container: str, *, reverse: bool, seconds: int = 2, omit: int = 1) -> float:
    """Mbps received, host → container (or back with `reverse`), slow start left out."""
    args = ["iperf3", "-J", "-c", address(container), "-t", str(seconds), "-O", str(omit)]
    out = subprocess.run(
        [*args, "--connect-timeout", "5000", *(["-R"] if reverse else [])],
        capture_output=True,
        text=True,
        timeout=60,
    )
    result = json.loads(out.stdout)
    assert "error" not in result, result["error"]
    return float(result["end"]["sum_received"]["bits_per_second"]) / 1e6


def tbf_rates(container: str) -> list[int]:
    """The tbf rates (bytes/s) on the host ends of the container's interfaces, both ways."""
    pid = int(docker("inspect", "-f", "{{.State.Pid}}", container))
    links = netshape.host_links()
    veths = netshape.host_veths(pid, links) or []
    rates = []
    for dev in [v.name for v in veths] + [netshape.ifb_name(v) for v in veths]:
        out = subprocess.run(["tc", "-j", "qdisc", "show", "dev", dev], capture_output=True)
        rates += [
            q["options"]["rate"] for q in json.loads(out.stdout or b"[]") if q["kind"] == "tbf"
        ]
    return rates


@pytest.fixture(scope="module")
def shaped(docker_engine: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shaped]:
    require(os.geteuid() == 0, "root (tc and nsenter on the host's veths)")
    have = subprocess.run(["docker", "image", "inspect", IPERF_IMAGE], capture_output=True)
    require(have.returncode == 0, f"the local image {IPERF_IMAGE} (bash .ci/images.sh)")
    require(subprocess.run(["which", "iperf3"]).returncode == 0, "iperf3 (Debian's iperf3)")
    platform = "n" + secrets.token_hex(4)
    spec = make_spec(platform, {p: p for p in PLANS})
    engine = Engine()
    try:
        for tenant in spec.tenants:
            engine.network(f"{platform}_{tenant}", labels(tenant, "", "network"))
        apps = app_containers(spec, tmp_path_factory.mktemp("net"))
        for app in apps.values():
            engine.start(app)
        yield Shaped(spec, engine, apps)
    finally:
        engine.cleanup()
        netshape.remove_orphans(netshape.host_links())


@pytest.mark.parametrize("plan", list(PLANS))
def test_throughput_is_the_plans_rate_both_ways(shaped: Shaped, plan: str) -> None:
    mbps = shaped.spec.limits_of(shaped.spec.tenants[plan]).network_mbps
    assert mbps == PLANS[plan]
    name = shaped.apps[plan].name
    assert tbf_rates(name) == []
    free_in, free_out = (iperf_mbps(name, reverse=r, seconds=1, omit=0) for r in (False, True))
    assert free_in > 2 * mbps and free_out > 2 * mbps, (free_in, free_out)

    # This tenant alone: the others stay unshaped for their own control run.
    report = netshape.reconcile(make_spec(shaped.spec.platform.name, {plan: plan}))
    assert report.shaped == {name: mbps}, report
    into, out_of = iperf_mbps(name, reverse=False), iperf_mbps(name, reverse=True)
    assert abs(into - mbps) <= 0.15 * mbps, (into, mbps)
    assert abs(out_of - mbps) <= 0.15 * mbps, (out_of, mbps)


# --- the shaping's life: reapplied, changed, on every interface, after a restart, removed ---

FREE_RATE = 10 * 125_000  # the free plan's 10 Mbps in tc's bytes per second
STARTER_RATE = 100 * 125_000


@dataclass
class Lone:
    spec: Spec
    engine: Engine
    name: str
    tmp: Path


@pytest.fixture
def lone(docker_engine: str, tmp_path: Path) -> Iterator[Lone]:
    """One free tenant's app (busybox httpd) on its platform bridge, not yet shaped."""
    require(os.geteuid() == 0, "root (tc and nsenter on the host's veths)")
    platform = "n" + secrets.token_hex(4)
    spec = make_spec(platform, {"acme": "free"}, image="hosting-test/busybox:latest")
    engine = Engine()
    try:
        engine.network(f"{platform}_acme", labels("acme", "", "network"))
        app = replace(app_containers(spec, tmp_path)["acme"], command=None)
        engine.start(app)
        yield Lone(spec, engine, app.name, tmp_path)
    finally:
        engine.cleanup()
        netshape.remove_orphans(netshape.host_links())


def host_ends(name: str) -> list[netshape.Link]:
    pid = int(docker("inspect", "-f", "{{.State.Pid}}", name))
    return netshape.host_veths(pid, netshape.host_links()) or []


def tc_state(name: str) -> list[object]:
    """Every qdisc and ingress filter on the container's host ends and their IFBs."""
    state: list[object] = []
    for veth in host_ends(name):
        for args in (
            ["qdisc", "show", "dev", veth.name],
            ["filter", "show", "dev", veth.name, "parent", "ffff:"],
            ["qdisc", "show", "dev", netshape.ifb_name(veth)],
        ):
            state.append(json.loads(subprocess.check_output(["tc", "-j", *args]) or b"[]"))
    return state


def exists(dev: str) -> bool:
    return subprocess.run(["ip", "link", "show", "dev", dev], capture_output=True).returncode == 0


def test_reapplying_changes_nothing_and_a_new_plan_changes_the_rate(lone: Lone) -> None:
    assert tbf_rates(lone.name) == []
    assert netshape.reconcile(lone.spec).shaped == {lone.name: 10}
    assert tbf_rates(lone.name) == [FREE_RATE, FREE_RATE]  # into it, out of it
    before = tc_state(lone.name)

    again = netshape.reconcile(lone.spec)
    assert again.shaped == {} and again.unchanged == 1, again
    assert tc_state(lone.name) == before

    upgraded = make_spec(
        lone.spec.platform.name, {"acme": "starter"}, "hosting-test/busybox:latest"
    )
    assert netshape.reconcile(upgraded).shaped == {lone.name: 100}
    assert tbf_rates(lone.name) == [STARTER_RATE, STARTER_RATE]


def test_every_interface_of_a_container_is_shaped(lone: Lone) -> None:
    second = f"{lone.spec.platform.name}_extra"
    lone.engine.network(second, labels("acme", "", "network"))
    docker("network", "connect", second, lone.name)
    assert len(host_ends(lone.name)) == 2
    netshape.reconcile(lone.spec)
    assert tbf_rates(lone.name) == [FREE_RATE] * 4  # two veths, both ways


def test_the_agent_shapes_a_container_docker_restarted(lone: Lone) -> None:
    netshape.reconcile(lone.spec)
    [old] = host_ends(lone.name)
    docker("restart", "-t", "0", lone.name)
    [new] = host_ends(lone.name)
    assert new.ifindex != old.ifindex and tbf_rates(lone.name) == []  # a new veth, unshaped

    agent = Agent(lone.spec, lone.tmp / "store.duckdb", spec_dir=lone.tmp)
    outcome = agent.run_job("network")
    assert outcome.ok, outcome.error
    assert outcome.summary["shaped"] == {lone.name: 10}
    assert netshape.ifb_name(old) in outcome.summary["removed"]
    assert tbf_rates(lone.name) == [FREE_RATE, FREE_RATE]


def test_a_removed_containers_shaping_goes_with_it(lone: Lone) -> None:
    netshape.reconcile(lone.spec)
    [veth] = host_ends(lone.name)
    ifb = netshape.ifb_name(veth)
    assert exists(veth.name) and exists(ifb)
    docker("rm", "-f", lone.name)
    # The veth is gone and its qdiscs and filter with it; the IFB is a device of its own.
    assert not exists(veth.name)
    gone = subprocess.run(["tc", "qdisc", "show", "dev", veth.name], capture_output=True)
    assert gone.returncode != 0 and b"Cannot find device" in gone.stderr, gone
    assert exists(ifb)
    assert ifb in netshape.reconcile(lone.spec).removed
    assert not exists(ifb)
