"""The hardening of an app container, exercised on a real kernel rather than read back.

`docker inspect` only says what was asked for. Here the app container that
`desired_containers` (the Pulumi program's source) declares runs unchanged, and a shell inside
it tries what the hardening forbids: each attempt must fail with the errno that names the
reason. The same attempts succeed in the same image without the hardening, so every check
here can fail.
"""

from __future__ import annotations

import errno
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from hosting.stacks.containers import PIDS_LIMIT, ContainerSpec, Mount
from tests.conftest import require
from tests.docker_runtime.conftest import World
from tests.docker_runtime.runtime import docker, pids_max

pytestmark = pytest.mark.docker

# (what is tried, the shell command). Each leaves what it needs in /tmp, the one writable place.
WRITE_ROOT = "touch /probe"
CHOWN = "touch /tmp/owned && chown 1:1 /tmp/owned"
RAW_SOCKET = "traceroute -n -m 1 -q 1 -w 1 127.0.0.1"  # busybox: socket(AF_INET, SOCK_RAW, …)
COPY_TO_TMP = "cp /bin/busybox /tmp/true"
EXEC_FROM_TMP = "/tmp/true"  # busybox runs the applet its file is named after


def sh(container: str, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "exec", container, "sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=60,
    )


def app(world: World) -> ContainerSpec:
    [replica] = world.desired.apps[("beta", "api")]
    return replica


@pytest.fixture(scope="module")
def running(world: World) -> str:
    cspec = app(world)
    world.engine.start(cspec)
    world.engine.wait_healthy(cspec.name)
    assert sh(cspec.name, "id -u").stdout.strip() == "0", "root, so only capabilities stop it"
    return cspec.name


def test_writing_to_the_root_filesystem_fails_with_erofs(running: str) -> None:
    out = sh(running, WRITE_ROOT)
    assert out.returncode != 0
    assert os.strerror(errno.EROFS) in out.stderr, out.stderr


def test_chown_fails_with_eperm_without_cap_chown(running: str) -> None:
    out = sh(running, CHOWN)
    assert out.returncode != 0
    assert f"chown: /tmp/owned: {os.strerror(errno.EPERM)}" in out.stderr, out.stderr


def test_a_raw_socket_fails_with_eperm_without_cap_net_raw(running: str) -> None:
    out = sh(running, RAW_SOCKET)
    assert out.returncode != 0
    assert f"socket: {os.strerror(errno.EPERM)}" in out.stderr, out.stderr


def test_tmp_is_writable_but_refuses_to_exec(running: str) -> None:
    copied = sh(running, COPY_TO_TMP)
    assert copied.returncode == 0, copied.stderr
    out = sh(running, EXEC_FROM_TMP)
    assert out.returncode == 126  # found but not executable
    assert os.strerror(errno.EACCES) in out.stderr, out.stderr


def test_forking_past_the_process_limit_fails(world: World) -> None:
    """The app's own spec with only the command changed: start sleepers until fork fails.

    The pids cgroup counts the container's own processes (the shell and the subshell
    included), so fork fails with EAGAIN just short of the limit, whatever else runs on the
    host; the cgroup's own file says the limit. Every step after the failure is a shell
    builtin (no fork is possible then) and the container is removed at once. The loop stops
    by itself at twice the limit.
    """
    base = app(world)
    forks = replace(
        base,
        name=base.name + "_forks",
        networks=(),
        health=None,
        restart="no",
        command=(
            "sh",
            "-c",
            f"( i=0; while [ $i -lt {2 * PIDS_LIMIT} ]; do sleep 300 & i=$((i + 1));"
            " echo $i >/tmp/n; done )"
            " 2>/tmp/err; kill -9 -1; read n </tmp/n; read err </tmp/err;"
            ' echo "started=$n"; echo "error=$err"',
        ),
    )
    world.engine.start(forks)
    try:
        assert pids_max(world.engine.inspect(forks.name)["Id"]) == str(PIDS_LIMIT)
        deadline = time.monotonic() + 120
        while world.engine.inspect(forks.name)["State"]["Running"]:
            assert time.monotonic() < deadline, "the fork loop did not stop"
            time.sleep(0.2)
        logs = docker("logs", forks.name)
    finally:
        docker("rm", "-f", forks.name, check=False)
    lines = dict(line.split("=", 1) for line in logs.splitlines())
    assert PIDS_LIMIT - 5 <= int(lines["started"]) < PIDS_LIMIT, logs
    assert f"can't fork: {os.strerror(errno.EAGAIN)}" in lines["error"], logs


def test_the_same_attempts_succeed_without_the_hardening(world: World) -> None:
    """The control: the same image and commands in a plain container, where nothing stops them.

    Without it, a probe that failed for another reason (a missing applet, a typo) would pass.
    """
    script = " && ".join([WRITE_ROOT, CHOWN, RAW_SOCKET, COPY_TO_TMP, EXEC_FROM_TMP])
    out = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", app(world).image, "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr


IO_MBPS = 20  # below any disk CI runs on, so the throttle, not the disk, sets the pace
IO_MB = 3 * IO_MBPS  # three seconds' worth at the limit


def test_disk_io_is_throttled_to_the_limit_both_ways(world: World) -> None:
    """The app's spec on a volume, with its disk IO limit set to IO_MBPS: direct (uncached)
    writes and reads both take IO_MB / IO_MBPS seconds within 15 %, timed inside the
    container by /proc/uptime (busybox's date has whole seconds only). The same run without
    the limit is at least twice as fast, so the limit is what was measured."""
    assert world.engine.io_device is not None, "Docker's data root is on no local block device"
    volume = app(world).name + "_io"
    timed = (
        "t() { read up _ </proc/uptime; echo $up; }; t;"
        f" dd if=/dev/zero of=/data/f bs=1M count={IO_MB} oflag=direct 2>/dev/null; t;"
        " dd if=/data/f of=/dev/null bs=1M iflag=direct 2>/dev/null; t"
    )

    def run(limit: int | None) -> tuple[float, float]:
        spec = replace(
            app(world),
            name=volume + ("_limited" if limit else "_free"),
            networks=(),
            health=None,
            restart="no",
            disk_io_mbps=limit,
            mounts=(Mount("/data", volume),),
            command=("sh", "-c", timed),
        )
        world.engine.start(spec)
        deadline = time.monotonic() + 120
        while world.engine.inspect(spec.name)["State"]["Running"]:
            assert time.monotonic() < deadline, "the IO run did not finish"
            time.sleep(0.2)
        start, written, read = (float(x) for x in docker("logs", spec.name).split())
        return written - start, read - written

    write_s, read_s = run(IO_MBPS)
    expected = IO_MB / IO_MBPS
    assert abs(write_s - expected) <= 0.15 * expected, (write_s, expected)
    assert abs(read_s - expected) <= 0.15 * expected, (read_s, expected)
    free_write, free_read = run(None)
    assert free_write < write_s / 2 and free_read < read_s / 2, (free_write, free_read)


# Each plan's own rate. The disk under Docker's data root may be no faster than pro's 200 MB/s
# (a VM's writes here run at about 220), so these run on a zram device of the test's own,
# several times faster than any plan: the throttle, not the device, sets the pace. The test
# above shows the same limit on the data root's own device.
PLAN_DISK_MBPS = {"free": 50, "starter": 100, "pro": 200}  # the product document's MB/s
ZRAM = Path("/sys/class/zram-control")


@pytest.fixture
def fast_disk() -> Iterator[tuple[str, str]]:
    """(device, mount point): an ext4 on a zram device added for this test, removed after."""
    require(os.geteuid() == 0, "root (to add a zram device and mount it)")
    require(ZRAM.is_dir(), "zram (CONFIG_ZRAM) to make a block device faster than any plan")
    number = (ZRAM / "hot_add").read_text().strip()
    device, mount = f"/dev/zram{number}", tempfile.mkdtemp(prefix="hosting-io-")
    try:
        Path(f"/sys/block/zram{number}/disksize").write_text("768M")
        subprocess.run(["mkfs.ext4", "-q", device], check=True, capture_output=True)
        subprocess.run(["mount", device, mount], check=True, capture_output=True)
        yield device, mount
    finally:
        subprocess.run(["umount", mount], capture_output=True)
        os.rmdir(mount)
        (ZRAM / "hot_remove").write_text(number)


@pytest.mark.root
@pytest.mark.parametrize("plan", list(PLAN_DISK_MBPS))
def test_direct_writes_run_at_the_plans_disk_rate(
    world: World, fast_disk: tuple[str, str], plan: str
) -> None:
    """Two seconds' worth of `dd oflag=direct` at the plan's MB/s, from the app's spec with
    the plan's limit, take two seconds within 15 %; without the limit, under half of that."""
    limits = world.spec.plans[plan].limits
    assert limits is not None and limits.disk_io_mbps == PLAN_DISK_MBPS[plan]
    mbps = limits.disk_io_mbps
    device, mount = fast_disk
    size_mb = 2 * mbps
    timed = (
        "t() { read up _ </proc/uptime; echo $up; }; t;"
        f" dd if=/dev/zero of=/data/f bs=1M count={size_mb} oflag=direct 2>/dev/null; t"
    )

    def write_seconds(limit: int | None) -> float:
        spec = replace(
            app(world),
            name=f"{app(world).name}_{plan}_{'limited' if limit else 'free'}",
            networks=(),
            health=None,
            restart="no",
            disk_io_mbps=limit,
            mounts=(Mount("/data", mount, kind="bind"),),
            command=("sh", "-c", timed),
        )
        try:
            # The device named here, not the engine's data root (Engine.start's default).
            docker("create", *spec.docker_run_args(io_device=device))
            docker("start", "-a", spec.name, timeout=120)
            start, written = (float(x) for x in docker("logs", spec.name).split())
        finally:
            docker("rm", "-f", spec.name, check=False)
        return written - start

    limited = write_seconds(mbps)
    assert abs(limited - 2) <= 0.15 * 2, (limited, mbps)
    free = write_seconds(None)
    assert free < limited / 2, (free, limited)
