"""The hostile-tenant suite: beta's code attacks from inside its own container, on a real kernel.

Every container is the one `desired_containers` (the Pulumi program's source) declares: alpha's
two site replicas and database, beta's API, and the edge on both tenant networks, loaded with
the generated config. Beta is the attacker (root in its container, like most images); alpha is
the neighbour. Each attack must fail for the reason the test names, and each test has a control
that shows the same attempt working where the protection is absent (where that is safe), so
that a probe failing for another reason (a missing applet, a typo) cannot pass. The last test
checks that the platform is still healthy after all of them.

The fork bomb is `test_hardening_exercised.py::test_forking_past_the_process_limit_fails`, and
app-to-app traffic between tenants is `test_real_engine.py::
test_tenants_cannot_reach_each_other_but_the_edge_reaches_both`: not repeated here.
"""

from __future__ import annotations

import errno
import http.client
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hosting.edge.caddy import build_config, get_config, push_config
from hosting.provider import firewall
from hosting.spec import names
from hosting.stacks.containers import ContainerSpec
from tests.conftest import require
from tests.docker_runtime.conftest import World
from tests.docker_runtime.probes import (
    CONNECTED,
    FILTERED,
    REFUSED,
    OutsideHost,
    connects_from_host,
    iptables_rule,
    listening,
    memory_limit,
    oom_kills,
    outside_host,
    run,
    sh,
    tcp,
)
from tests.docker_runtime.runtime import docker

pytestmark = pytest.mark.docker

MIB = 1024 * 1024
FREE_PLAN_MEMORY = 512 * MIB  # beta's plan (free), from the product's plan table
TMP_CAP = 64 * MIB  # the app containers' /tmp tmpfs (README: Hardening and limits)
EPERM = os.strerror(errno.EPERM)
ENOENT = os.strerror(errno.ENOENT)
EROFS = os.strerror(errno.EROFS)
BUSYBOX = "hosting-test/busybox:latest"
NO_SECCOMP = ("--security-opt", "seccomp=unconfined")


@pytest.fixture(scope="module")
def platform(world: World) -> World:
    for replicas in world.desired.apps.values():
        for cspec in replicas:
            world.engine.start(cspec)
    db = world.desired.databases[("alpha", "db")]
    assert db is not None
    world.engine.start(db)
    (world.state_dir / "edge" / "admin").mkdir(parents=True)
    (world.state_dir / "edge" / "logs").mkdir(parents=True)
    world.engine.start(world.desired.edge)
    deadline = time.monotonic() + 30
    while not admin_socket(world).exists():
        assert time.monotonic() < deadline, docker("logs", world.desired.edge.name, check=False)
        time.sleep(0.1)
    for cspec in [*(c for r in world.desired.apps.values() for c in r), db]:
        world.engine.wait_healthy(cspec.name)
    push_config(f"unix://{admin_socket(world)}", build_config(world.spec, tls=False))
    return world


def admin_socket(world: World) -> Path:
    return world.state_dir / "edge" / "admin" / "admin.sock"


def attacker(world: World) -> ContainerSpec:
    [replica] = world.desired.apps[("beta", "api")]
    return replica


def neighbour(world: World) -> ContainerSpec:
    return world.desired.apps[("alpha", "site")][0]


def database(world: World) -> ContainerSpec:
    db = world.desired.databases[("alpha", "db")]
    assert db is not None
    return db


def net(world: World, tenant: str) -> str:
    return names.network_name(world.spec.platform.name, tenant)


def ip_on(world: World, container: str, network: str) -> str:
    networks = world.engine.inspect(container)["NetworkSettings"]["Networks"]
    return str(networks[network]["IPAddress"])


def gateway(network: str) -> str:
    return docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", network)


def through_edge(world: World, tenant: str, deployment: str) -> int:
    """The status the edge answers for a deployment's hostname, from the host."""
    kind = world.spec.tenants[tenant].deployments[deployment].type
    host = names.hostname(tenant, deployment, kind, world.spec.platform.domain)
    conn = http.client.HTTPConnection("127.0.0.1", world.settings.edge_http_port, timeout=15)
    try:
        conn.request("GET", "/healthz", headers={"Host": host})
        return conn.getresponse().status
    finally:
        conn.close()


def control_name() -> str:
    return "hx_control_" + secrets.token_hex(4)


# --- resources ----------------------------------------------------------------------------


def test_a_memory_bomb_is_oom_killed_at_the_plans_memory_and_the_neighbour_answers(
    platform: World,
) -> None:
    """busybox dd allocates its whole block (bs) and fills it: a block of the plan's memory
    plus 32 MiB is killed by the kernel's OOM killer, one of the plan's memory minus 32 MiB is
    not (the control: dd can allocate, and the limit sits at the plan's memory). Only dd dies:
    the tenant's own server and the neighbour keep answering."""
    beta = attacker(platform).name
    cid = platform.engine.inspect(beta)["Id"]
    assert memory_limit(cid) == FREE_PLAN_MEMORY
    under = sh(beta, f"dd if=/dev/zero of=/dev/null bs={FREE_PLAN_MEMORY // MIB - 32}M count=1")
    assert under.returncode == 0, under.stderr
    kills = oom_kills(cid)
    bomb = sh(beta, f"dd if=/dev/zero of=/dev/null bs={FREE_PLAN_MEMORY // MIB + 32}M count=1")
    assert bomb.returncode == 128 + 9, (bomb.returncode, bomb.stderr)  # SIGKILL
    assert oom_kills(cid) == kills + 1
    assert platform.engine.inspect(beta)["State"]["Running"] is True
    assert through_edge(platform, "alpha", "site") == 200
    assert through_edge(platform, "beta", "api") == 200


def test_filling_tmp_stops_at_its_cap_with_enospc(platform: World) -> None:
    beta = attacker(platform).name
    fill = f"dd if=/dev/zero of=/tmp/fill bs=1M count={TMP_CAP // MIB + 16}"
    try:
        out = sh(beta, fill)
        assert out.returncode != 0
        assert os.strerror(errno.ENOSPC) in out.stderr, out.stderr
        assert sh(beta, "stat -c %s /tmp/fill").stdout.strip() == str(TMP_CAP)
    finally:
        sh(beta, "rm -f /tmp/fill")
    # Control: without the tmpfs, /tmp is the image's layer on the host's disk and takes it all.
    plain = run(control_name(), ["--network", "none", BUSYBOX], fill + " && stat -c %s /tmp/fill")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.strip() == str(TMP_CAP + 16 * MIB)


@pytest.mark.root
def test_filling_the_database_volume_stops_at_the_plans_storage(platform: World) -> None:
    """Not filled for real here (tests/provider/test_volume_quota.py fills a small one to
    ENOSPC): 8 MiB are written, and the room the volume offers is compared with the plan's
    storage (GB = 2^30 bytes, as billing counts it). The control: a plain named volume, what
    the database had before, offers the whole filesystem of Docker's data root."""
    require(os.geteuid() == 0, "root (apply mounts the databases' filesystems as root)")
    db = database(platform)
    data = db.mounts[0].target
    storage = platform.spec.plans["starter"].storage_gb * 2**30  # alpha's plan
    df = f"df -Pk {data} | tail -1"
    try:
        out = sh(db.name, f"dd if=/dev/zero of={data}/hx-fill bs=1M count=8 && {df}")
        if out.returncode != 0:
            pytest.fail(f"could not write into the volume: {out.stderr}")
        total = int(out.stdout.split()[1]) * 1024
        assert 0.9 * storage < total <= storage, (total, storage)
    finally:
        sh(db.name, f"rm -f {data}/hx-fill")
    plain = run(control_name(), ["--network", "none", "-v", data, BUSYBOX], df)
    assert plain.returncode == 0, plain.stderr
    host = os.statvfs(docker("info", "-f", "{{.DockerRootDir}}"))
    assert int(plain.stdout.split()[1]) * 1024 == host.f_blocks * host.f_frsize > storage


# --- other tenants, the host and the outside ------------------------------------------------


def test_another_tenants_database_is_unreachable(platform: World) -> None:
    """By address on alpha's bridge: Docker's isolation chains drop traffic between bridges."""
    db = database(platform).name
    alpha_net = net(platform, "alpha")
    db_ip = ip_on(platform, db, alpha_net)
    assert tcp(neighbour(platform).name, db_ip, 5432) == CONNECTED  # control: alpha's own app
    assert tcp(attacker(platform).name, db_ip, 5432) == FILTERED


def test_published_database_ports_are_refused_on_the_hosts_bridge_addresses(
    platform: World,
) -> None:
    """Databases are published on platform.database_bind (127.0.0.1) only. From a container,
    127.0.0.1 is the container itself, and the host is its bridges' gateway addresses: the
    published port must be closed there, on beta's own gateway and on alpha's."""
    port = platform.settings.databases["alpha/db"].port
    assert connects_from_host("127.0.0.1", port)  # control: published, on the host's loopback
    beta = attacker(platform).name
    for address in ("127.0.0.1", gateway(net(platform, "beta")), gateway(net(platform, "alpha"))):
        assert tcp(beta, address, port) == REFUSED, address


def test_the_hosts_loopback_services_are_refused(platform: World) -> None:
    """A service on the host's 127.0.0.1 cannot be reached through the gateway address. The
    control: a service on the gateway address itself answers the same probe."""
    beta = attacker(platform).name
    gw = gateway(net(platform, "beta"))
    with listening("127.0.0.1") as port:
        assert connects_from_host("127.0.0.1", port)
        assert tcp(beta, gw, port) == REFUSED
    with listening(gw) as port:
        assert tcp(beta, gw, port) == CONNECTED


@contextmanager
def tenant_firewall(world: World) -> Iterator[None]:
    """The firewall apply installs for this platform's tenant bridges, removed after (the
    other tests here show the layers beneath it)."""
    edge_ports = (world.settings.edge_http_port, world.settings.edge_https_port)
    try:
        assert firewall.sync(world.spec, edge_ports) is None
        yield
    finally:
        firewall.remove(world.spec.platform.name)


@pytest.mark.root
def test_a_host_service_on_all_interfaces_is_unreachable(platform: World) -> None:
    """Bound to the gateway address only (what 0.0.0.0 includes) so that nothing is opened
    toward the machine's outside network during the test. The control: without apply's
    INPUT filter, the service answers the tenant."""
    require(os.geteuid() == 0, "root (to change the host's iptables)")
    beta = attacker(platform).name
    gw = gateway(net(platform, "beta"))
    edge_ip = ip_on(platform, platform.desired.edge.name, net(platform, "beta"))
    db_ip = ip_on(platform, database(platform).name, net(platform, "alpha"))
    with listening(gw) as port:
        assert tcp(beta, gw, port) == CONNECTED
        with tenant_firewall(platform):
            assert tcp(beta, gw, port) == FILTERED
            # What the platform needs still passes: the edge on the tenant's bridge, an app
            # to its own database, and the edge to both tenants.
            assert tcp(beta, edge_ip, 80) == CONNECTED
            assert tcp(neighbour(platform).name, db_ip, 5432) == CONNECTED
            assert through_edge(platform, "alpha", "site") == 200
            assert through_edge(platform, "beta", "api") == 200


def test_the_docker_socket_is_not_there(platform: World) -> None:
    beta = attacker(platform).name
    probe = "ls -l /var/run/docker.sock /run/docker.sock"
    out = sh(beta, probe)
    assert out.returncode != 0
    assert out.stderr.count(ENOENT) == 2, out.stderr
    # dockerd has no TCP listener either (2375/2376 are the Engine API's ports)
    gw = gateway(net(platform, "beta"))
    assert tcp(beta, gw, 2375) == REFUSED
    assert tcp(beta, gw, 2376) == REFUSED
    # Control: mounted (as a careless operator would), the same probe finds the socket.
    mounted = run(
        control_name(),
        ["--network", "none", "-v", "/var/run/docker.sock:/var/run/docker.sock", BUSYBOX],
        "test -S /var/run/docker.sock",
    )
    assert mounted.returncode == 0, mounted.stderr


def test_caddys_admin_api_is_out_of_reach(platform: World) -> None:
    """The admin API is a unix socket in a bind mount only the edge has: not in the tenant's
    filesystem, and no TCP port (Caddy's default 2019) on the edge, which the tenant does reach
    on port 80 (the control)."""
    beta = attacker(platform).name
    edge = platform.desired.edge.name
    assert get_config(f"unix://{admin_socket(platform)}")["admin"]["listen"].startswith("unix/")
    out = sh(beta, "ls /run/caddy-admin/admin.sock")
    assert out.returncode != 0 and ENOENT in out.stderr, out.stderr
    edge_ip = ip_on(platform, edge, net(platform, "beta"))
    assert tcp(beta, edge_ip, 80) == CONNECTED
    assert tcp(beta, edge_ip, 2019) == REFUSED
    # Everything the edge listens on, read in its network namespace from the host.
    pid = str(platform.engine.inspect(edge)["State"]["Pid"])
    ss = subprocess.run(
        ["nsenter", "-t", pid, "-n", "ss", "-Hltn"], capture_output=True, text=True, timeout=30
    )
    assert ss.returncode == 0, ss.stderr
    addresses = [line.split()[3] for line in ss.stdout.splitlines()]
    # 127.0.0.11 is the engine's own DNS resolver in every container on a user network
    ports = {a.rsplit(":", 1)[1] for a in addresses if not a.startswith("127.0.0.11:")}
    assert ports == {"80"}, ss.stdout


@pytest.fixture
def outside() -> Iterator[OutsideHost]:
    require(os.geteuid() == 0, "root (to create a network namespace and a veth pair)")
    with outside_host() as host:
        assert connects_from_host(host.ip, host.port)  # the test host answers its neighbours
        yield host


@pytest.mark.root
def test_a_host_outside_the_platforms_networks_is_unreachable(
    platform: World, outside: OutsideHost
) -> None:
    """A test host of our own, in a network namespace behind a veth pair on this machine.

    What stops the tenant here is the test host's `DOCKER-USER ! -d 172.20.0.0/14 -j DROP`
    rule (README, Testing); the next test shows apply's own egress filter stopping it on a host
    without that rule."""
    rules = subprocess.run(["iptables", "-S", "DOCKER-USER"], capture_output=True, text=True)
    assert "! -d 172.20.0.0/14 -j DROP" in rules.stdout, rules.stdout
    assert tcp(attacker(platform).name, outside.ip, outside.port) == FILTERED


@pytest.mark.root
def test_a_host_outside_is_unreachable_without_the_hosts_egress_rule(
    platform: World, outside: OutsideHost
) -> None:
    """The host's drop rule lifted for this one destination only (the rule names the tenant's
    source address, our veth and the test host's address): what a host without it does. The
    control: the tenant reaches the test host. Then apply's egress filter, whose jump goes
    first in DOCKER-USER (before the exemption), drops it: its counter for 10.0.0.0/8 moves."""
    beta = attacker(platform).name
    src = ip_on(platform, beta, net(platform, "beta"))
    exempt = ("-s", src, "-o", outside.host_if, "-d", outside.ip, "-j", "ACCEPT")
    policy = firewall.chains(platform.spec.platform.name).egress_policy
    with iptables_rule("DOCKER-USER", *exempt):
        assert tcp(beta, outside.ip, outside.port) == CONNECTED
        with tenant_firewall(platform):
            before = dropped(policy, "10.0.0.0/8")
            assert tcp(beta, outside.ip, outside.port) == FILTERED
            assert dropped(policy, "10.0.0.0/8") > before


def dropped(chain: str, destination: str) -> int:
    """Packets the chain's DROP rule for `destination` has counted."""
    out = subprocess.run(
        ["iptables", "-L", chain, "-n", "-v", "-x"], capture_output=True, text=True, check=True
    )
    for line in out.stdout.splitlines():
        cols = line.split()
        if len(cols) >= 9 and cols[2] == "DROP" and cols[8] == destination:
            return int(cols[0])
    raise AssertionError(f"no DROP rule for {destination} in {chain}: {out.stdout}")


# --- the kernel -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def own_network(world: World) -> str:
    """A throwaway bridge for the controls that send frames (the engine removes it after)."""
    name = f"{world.spec.platform.name}_hx_control"
    world.engine.network(name, {"hosting.test": "control"})
    return name


def test_raw_frames_and_arp_spoofing_fail_with_eperm(platform: World, own_network: str) -> None:
    """arping opens socket(AF_PACKET): without NET_RAW there is no socket to forge ARP with
    (gratuitous ARP claiming the gateway's address is the spoof)."""
    beta = attacker(platform).name
    gw = gateway(net(platform, "beta"))
    out = sh(beta, f"arping -U -c 1 -w 1 -I eth0 -s {gw} {gw}")
    assert out.returncode != 0
    assert f"socket: {EPERM}" in out.stderr, out.stderr
    # Control: Docker's default capabilities include NET_RAW; an ARP request to our own bridge's
    # gateway gets its answer.
    control_gw = gateway(own_network)
    plain = run(
        control_name(), ["--network", own_network, BUSYBOX], f"arping -c 1 -w 3 {control_gw}"
    )
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert "Received 1 response" in plain.stdout


def test_mounting_and_new_namespaces_fail_with_eperm(platform: World) -> None:
    beta = attacker(platform).name
    out = sh(beta, "mount -t tmpfs none /tmp")
    assert out.returncode != 0
    assert "permission denied" in out.stderr, out.stderr  # busybox's text for EPERM/EACCES
    # A user namespace would give root-in-namespace with every capability, so mount again.
    out = sh(beta, "unshare -U -r -m sh -c 'mount -t tmpfs none /tmp'")
    assert out.returncode != 0
    assert EPERM in out.stderr, out.stderr
    # Control: with CAP_SYS_ADMIN and no seccomp filter, both work (in the control's own
    # mount namespace).
    plain = run(
        control_name(),
        ["--network", "none", "--cap-add", "SYS_ADMIN", *NO_SECCOMP, BUSYBOX],
        "mount -t tmpfs none /tmp && unshare -U -r -m true",
    )
    assert plain.returncode == 0, plain.stderr


def test_other_tenants_processes_cannot_be_traced_or_read(platform: World) -> None:
    """busybox has no ptrace applet; opening /proc/PID/mem takes the same check as
    ptrace(PTRACE_ATTACH), and /proc/PID/environ (where a neighbour's secrets are) the
    PTRACE_MODE_READ one. The neighbour's PID (the host's number) does not exist in beta's PID
    namespace. The control: without the PID namespace, the same unprivileged root opens both."""
    victim = str(platform.engine.inspect(neighbour(platform).name)["State"]["Pid"])
    probe = f"exec 3</proc/{victim}/mem && tr '\\0' '\\n' </proc/{victim}/environ"
    out = sh(attacker(platform).name, probe)
    assert out.returncode != 0
    assert "PORT=8080" not in out.stdout
    assert f"can't open /proc/{victim}/mem: no such file" in out.stderr, out.stderr  # ENOENT
    out = sh(attacker(platform).name, f"kill -0 {victim}")
    assert os.strerror(errno.ESRCH) in out.stderr, out.stderr
    hardened = ["--cap-drop", "ALL", "--security-opt", "no-new-privileges:true"]
    plain = run(control_name(), ["--network", "none", "--pid", "host", *hardened, BUSYBOX], probe)
    assert plain.returncode == 0, plain.stderr
    assert "PORT=8080" in plain.stdout.splitlines()


def test_loading_a_kernel_module_fails_with_eperm(platform: World) -> None:
    """Any file will do: the capability check comes before the kernel reads the module."""
    out = sh(attacker(platform).name, "insmod /bin/busybox")
    assert out.returncode != 0
    assert f"can't insert '/bin/busybox': {EPERM}" in out.stderr, out.stderr
    # Control: with CAP_SYS_MODULE the kernel itself answers (this kernel has no module
    # support, ENOSYS; one with it rejects a non-module, ENOEXEC): never EPERM.
    plain = run(
        control_name(),
        ["--network", "none", "--cap-add", "SYS_MODULE", *NO_SECCOMP, BUSYBOX],
        "insmod /bin/busybox",
    )
    assert plain.returncode != 0
    assert "can't insert '/bin/busybox'" in plain.stderr, plain.stderr
    assert EPERM not in plain.stderr, plain.stderr


def test_host_secrets_in_proc_and_sys_are_masked(platform: World) -> None:
    """Docker's masked paths: /dev/null over files, an empty read-only tmpfs over directories.
    The control for each is the host's own view, which is not empty."""
    beta = attacker(platform).name
    checked = []
    for path in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug"):
        if not os.path.exists(path):
            continue  # not in this kernel
        if path != "/proc/kcore":  # the host's memory: not read here, only its presence
            with open(path) as f:
                assert f.read(1), f"{path} is empty on the host too"
        out = sh(beta, f"wc -c < {path}")
        assert out.returncode == 0 and out.stdout.strip() == "0", (path, out.stdout, out.stderr)
        checked.append(path)
    assert checked, "none of the masked /proc files exists on this kernel"
    for directory in ("/sys/firmware", "/proc/acpi"):
        if not os.path.isdir(directory) or not os.listdir(directory):
            continue
        out = sh(beta, f"ls -A {directory}")
        assert out.returncode == 0 and out.stdout == "", (directory, out.stdout)
        checked.append(directory)
    # Kernel addresses (the KASLR offset): zeros without CAP_SYSLOG; the host's are not.
    with open("/proc/kallsyms") as f:
        assert int(f.readline().split()[0], 16) != 0
    out = sh(beta, "head -1 /proc/kallsyms")
    assert int(out.stdout.split()[0], 16) == 0, out.stdout
    # The host's kernel log.
    out = sh(beta, "dmesg")
    assert f"klogctl: {EPERM}" in out.stderr, out.stderr


def test_host_kernel_settings_are_read_only(platform: World) -> None:
    """core_pattern runs a program as the host's root on every crash: the classic escape.
    Not tried without the protection (it would change the host): the host's value is checked
    unchanged instead."""
    with open("/proc/sys/kernel/core_pattern") as f:
        before = f.read()
    out = sh(attacker(platform).name, "echo '|/tmp/x' > /proc/sys/kernel/core_pattern")
    assert out.returncode != 0
    assert EROFS in out.stderr, out.stderr
    out = sh(attacker(platform).name, "echo 1 > /sys/kernel/profiling")
    assert out.returncode != 0
    assert EROFS in out.stderr, out.stderr
    with open("/proc/sys/kernel/core_pattern") as f:
        assert f.read() == before


# --- after every attack ---------------------------------------------------------------------


def test_the_platform_is_healthy_after_every_attack(platform: World) -> None:
    """Last in this module: every container still runs, healthy, never restarted, and the edge
    answers for both tenants."""
    for cspec in platform.desired.every_container():
        state = platform.engine.inspect(cspec.name)
        assert state["State"]["Running"] is True, cspec.name
        assert state["RestartCount"] == 0, cspec.name
        if cspec.health is not None:
            assert state["State"]["Health"]["Status"] == "healthy", cspec.name
    assert through_edge(platform, "alpha", "site") == 200
    assert through_edge(platform, "beta", "api") == 200
