"""Database volumes of bounded size, on a real kernel: a tenant's loop-mounted ext4 image, bound
by Docker's local driver into a container, as apply makes it (hosting.provider.volume_quota).

Small sizes (64 MiB) so that filling is real; the controls show the same writes succeeding on
a plain named volume, which is a directory on the host's own disk.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hosting.provider import volume_quota
from hosting.provider.blockdev import device_of
from hosting.provider.volume_quota import TenantVolumes
from hosting.spec import loads
from tests.conftest import require

pytestmark = [pytest.mark.docker, pytest.mark.root]
MIB = 2**20
BUSYBOX = "hosting-test/busybox:latest"
ENOSPC = os.strerror(28)


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    if check and out.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])}: {out.stderr.strip()}")
    return out


class Volumes:
    """Docker volumes and control containers of one test, removed at the end."""

    def __init__(self) -> None:
        self.tag = "hxq" + secrets.token_hex(4)
        self.names: list[str] = []

    def bound(self, device: Path) -> str:
        name = f"{self.tag}_{len(self.names)}"
        opts = volume_quota.driver_opts(str(device))
        docker(
            "volume", "create", *(a for k, v in opts.items() for a in ("--opt", f"{k}={v}")), name
        )
        self.names.append(name)
        return name

    def plain(self) -> str:
        name = f"{self.tag}_{len(self.names)}"
        docker("volume", "create", name)
        self.names.append(name)
        return name

    def sh(self, volume: str, command: str) -> subprocess.CompletedProcess[str]:
        name = f"{self.tag}_run"
        try:
            return docker(
                "run", "--rm", "--name", name, "--network", "none", "-v", f"{volume}:/data",
                BUSYBOX, "sh", "-c", command, check=False,
            )  # fmt: skip
        finally:
            docker("rm", "-f", name, check=False)


@pytest.fixture
def root(docker_engine: str, tmp_path: Path) -> Iterator[Path]:
    require(os.geteuid() == 0, "root (to loop-mount a filesystem)")
    folder = tmp_path / "volumes"
    try:
        yield folder
    finally:
        volume_quota.delete(folder)


@pytest.fixture
def volumes(docker_engine: str) -> Iterator[Volumes]:
    made = Volumes()
    try:
        yield made
    finally:
        for name in made.names:
            docker("volume", "rm", "-f", name, check=False)


def df_total(out: str) -> int:
    """The size `df -Pk` reports for the last line's filesystem, in bytes."""
    return int(out.strip().splitlines()[-1].split()[1]) * 1024


def test_writing_past_the_size_fails_with_enospc(root: Path, volumes: Volumes) -> None:
    volume_quota.ensure(root, {"acme": TenantVolumes(64 * MIB, ("main",))})
    bound = volumes.bound(volume_quota.device(root, "acme", "main"))
    fill = (
        "dd if=/dev/zero of=/data/fill bs=1M count=100; sync; stat -c %s /data/fill; df -Pk /data"
    )
    out = volumes.sh(bound, fill)
    assert ENOSPC in out.stderr, out.stderr
    written = int(out.stdout.splitlines()[0])
    assert 40 * MIB < written < 64 * MIB  # all the filesystem had, less its own metadata
    assert df_total(out.stdout) <= 64 * MIB
    # What the container wrote is in the tenant's filesystem, where apply's volume binds it.
    assert (volume_quota.device(root, "acme", "main") / "fill").stat().st_size == written
    # Control: a plain named volume is the host's disk, and takes all 100 MiB.
    plain = volumes.plain()
    out = volumes.sh(plain, fill)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.splitlines()[0]) == 100 * MIB
    volumes.sh(plain, "rm -f /data/fill")


def test_a_tenants_databases_share_the_plans_storage(root: Path, volumes: Volumes) -> None:
    volume_quota.ensure(root, {"acme": TenantVolumes(64 * MIB, ("main", "reports"))})
    main = volumes.bound(volume_quota.device(root, "acme", "main"))
    reports = volumes.bound(volume_quota.device(root, "acme", "reports"))
    out = volumes.sh(main, "dd if=/dev/zero of=/data/fill bs=1M count=40 && sync")
    assert out.returncode == 0, out.stderr
    out = volumes.sh(reports, "dd if=/dev/zero of=/data/fill bs=1M count=40")
    assert ENOSPC in out.stderr, out.stderr  # 40 + 40 MiB do not fit in the plan's 64
    # Each database sees only its own directory.
    assert volumes.sh(reports, "ls /data").stdout.split() == ["fill"]
    assert sorted(p.name for p in volume_quota.mountpoint(root, "acme").iterdir()) == [
        "lost+found", "main", "reports",
    ]  # fmt: skip


def test_an_unmounted_filesystem_stops_the_database_instead_of_filling_the_host(
    root: Path, volumes: Volumes
) -> None:
    """After a reboot, before apply re-mounts: the volume's directory does not exist, so the
    engine refuses to start the container rather than give it the host's disk."""
    volume_quota.ensure(root, {"acme": TenantVolumes(64 * MIB, ("main",))})
    bound = volumes.bound(volume_quota.device(root, "acme", "main"))
    assert volumes.sh(bound, "echo kept > /data/marker").returncode == 0
    assert volume_quota.unmount(root) == []
    out = volumes.sh(bound, "echo lost > /data/marker")
    assert out.returncode != 0
    assert "no such file or directory" in out.stderr, out.stderr
    assert list(volume_quota.mountpoint(root, "acme").iterdir()) == []  # nothing on the host
    # apply mounts again (the same call), and the data is where it was
    report = volume_quota.ensure(root, {"acme": TenantVolumes(64 * MIB, ("main",))})
    assert report.mounted == ["acme"] and report.created == []
    assert volumes.sh(bound, "cat /data/marker").stdout == "kept\n"


def test_mounting_again_under_a_running_database_reuses_its_loop_device(
    root: Path, volumes: Volumes
) -> None:
    """Our mount gone while a container's volume still holds the filesystem: mounting the
    image through a second loop device would be a second ext4 on the same blocks. The one
    device is reused (volume_quota mounts it by name; util-linux's `mount -o loop` would reuse
    it too, so this holds the property, whichever does it), and what the container writes
    shows at once on the host's mount."""
    volume_quota.ensure(root, {"acme": TenantVolumes(64 * MIB, ("main",))})
    bound = volumes.bound(volume_quota.device(root, "acme", "main"))
    name = f"{volumes.tag}_long"
    docker("run", "-d", "--name", name, "--network", "none", "-v", f"{bound}:/data", BUSYBOX,
           "sleep", "600")  # fmt: skip
    try:
        assert volume_quota.unmount(root) == []  # ours goes; the container's mount stays
        image = str(volume_quota.image_path(root, "acme"))
        attached = subprocess.run(["losetup", "-n", "-O", "NAME", "-j", image],
                                  capture_output=True, text=True).stdout.split()  # fmt: skip
        assert len(attached) == 1  # still held by the container
        report = volume_quota.ensure(root, {"acme": TenantVolumes(64 * MIB, ("main",))})
        assert report.mounted == ["acme"]
        again = subprocess.run(["losetup", "-n", "-O", "NAME", "-j", image],
                               capture_output=True, text=True).stdout.split()  # fmt: skip
        assert again == attached
        docker("exec", name, "sh", "-c", "echo live > /data/seen")
        seen = volume_quota.device(root, "acme", "main") / "seen"
        assert seen.read_text() == "live\n"
    finally:
        docker("rm", "-f", name, check=False)


def test_a_larger_plan_grows_the_filesystem_and_keeps_the_data(
    root: Path, volumes: Volumes
) -> None:
    volume_quota.ensure(root, {"acme": TenantVolumes(64 * MIB, ("main",))})
    bound = volumes.bound(volume_quota.device(root, "acme", "main"))
    before = volumes.sh(bound, "echo kept > /data/marker && df -Pk /data")
    assert df_total(before.stdout) <= 64 * MIB
    report = volume_quota.ensure(root, {"acme": TenantVolumes(128 * MIB, ("main",))})
    assert report.grown == ["acme"] and not report.warnings
    after = volumes.sh(bound, "cat /data/marker && df -Pk /data")
    assert after.stdout.startswith("kept\n")
    assert 96 * MIB < df_total(after.stdout) <= 128 * MIB
    assert volume_quota.filesystem_size(volume_quota.image_path(root, "acme")) == 128 * MIB


def test_a_smaller_plan_leaves_the_filesystem_with_a_warning(root: Path) -> None:
    volume_quota.ensure(root, {"acme": TenantVolumes(128 * MIB, ("main",))})
    report = volume_quota.ensure(root, {"acme": TenantVolumes(64 * MIB, ("main",))})
    assert report.grown == []
    assert report.warnings == [
        "acme: the databases' filesystem stays at 0.125 GB, above the plan's 0.0625 GB"
        " (ext4 shrinks only unmounted)"
    ]
    assert volume_quota.filesystem_size(volume_quota.image_path(root, "acme")) == 128 * MIB


def test_the_image_is_sparse_and_delete_removes_it(root: Path) -> None:
    volume_quota.ensure(root, {"acme": TenantVolumes(1024 * MIB, ("main",))})
    image = volume_quota.image_path(root, "acme")
    assert image.stat().st_size == 1024 * MIB
    assert image.stat().st_blocks * 512 < 128 * MIB  # only what mkfs wrote
    assert volume_quota.delete(root) == []
    assert not image.exists() and not volume_quota.mountpoint(root, "acme").exists()


def test_wanted_sizes_each_tenant_by_its_plan_in_gib() -> None:
    spec = loads(
        """
version: 1
platform: {name: p, domain: apps.test, public_ipv4: 127.0.0.1}
tenants:
  a:
    name: A
    email: a@a.test
    plan: starter
    started: 2026-01-01
    deployments:
      main: {type: database}
      old: {type: database, stopped: true}
      site: {type: web, image: x, port: 80}
  b:
    name: B
    email: b@b.test
    plan: free
    started: 2026-01-01
    deployments:
      site: {type: web, image: x, port: 80}
"""
    )
    # starter: 10 GB of storage (SPEC section 1), GB = 2^30 bytes (section 3)
    assert volume_quota.wanted(spec) == {"a": TenantVolumes(10 * 2**30, ("main", "old"))}


IO_MBPS = 20  # below any disk CI runs on, so the throttle, not the disk, sets the pace
IO_MB = 3 * IO_MBPS  # three seconds' worth at the limit


def test_the_plans_disk_io_limit_still_holds_the_databases_writes(
    root: Path, volumes: Volumes
) -> None:
    """The disk IO limit names the disk holding Docker's data root (and here the image): a
    loop device writing through the page cache would escape it (30 MB in 0.14 s at a 10 MB/s
    limit, measured before the loop device did direct IO). Direct writes and reads on the
    bound volume take IO_MB / IO_MBPS seconds within 15 %, timed inside the container by
    /proc/uptime; without the limit, at least twice as fast."""
    volume_quota.ensure(root, {"acme": TenantVolumes(128 * MIB, ("main",))})
    bound = volumes.bound(volume_quota.device(root, "acme", "main"))
    disk = device_of(str(root))
    assert disk is not None, "the test's folder is on no local block device"
    timed = (
        "t() { read up _ </proc/uptime; echo $up; }; t;"
        f" dd if=/dev/zero of=/data/f bs=1M count={IO_MB} oflag=direct 2>/dev/null; t;"
        " dd if=/data/f of=/dev/null bs=1M iflag=direct 2>/dev/null; t; rm /data/f"
    )

    def run(limit: list[str]) -> tuple[float, float]:
        name = f"{volumes.tag}_io"
        try:
            out = docker("run", "--rm", "--name", name, "--network", "none", *limit,
                         "-v", f"{bound}:/data", BUSYBOX, "sh", "-c", timed)  # fmt: skip
        finally:
            docker("rm", "-f", name, check=False)
        start, written, read = (float(x) for x in out.stdout.split())
        return written - start, read - written

    rate = f"{disk}:{IO_MBPS}mb"
    write_s, read_s = run(["--device-write-bps", rate, "--device-read-bps", rate])
    expected = IO_MB / IO_MBPS
    assert abs(write_s - expected) <= 0.15 * expected, (write_s, expected)
    assert abs(read_s - expected) <= 0.15 * expected, (read_s, expected)
    free_write, free_read = run([])
    assert free_write < write_s / 2 and free_read < read_s / 2, (free_write, free_read)


def test_a_database_volume_made_before_bounds_stays_plain_in_the_desired_state(
    root: Path, volumes: Volumes
) -> None:
    """Docker keeps a volume by its name: declaring an existing plain volume as bound would
    differ from the engine on every plan. It is found, and declared plain."""
    from hosting.provider.runtime import plain_database_volumes
    from hosting.stacks.desired import database_volume_device
    from hosting.stacks.settings import ProgramSettings

    platform = volumes.tag
    spec = loads(
        f"""
version: 1
platform: {{name: {platform}, domain: apps.test, public_ipv4: 127.0.0.1}}
tenants:
  old:
    {{name: Old, email: o@o.test, plan: starter, started: 2026-01-01,
     deployments: {{main: {{type: database}}}}}}
  new:
    {{name: New, email: n@n.test, plan: starter, started: 2026-01-01,
     deployments: {{main: {{type: database}}, other: {{type: database}}}}}}
""",
        "hosting.yaml",
    )
    for tenant, bound in (("old", False), ("new", True)):
        name = f"{platform}_{tenant}_main_data"
        if bound:
            device = root / tenant
            device.mkdir(parents=True)
            opts = volume_quota.driver_opts(str(device))
            docker("volume", "create", *(a for k, v in opts.items() for a in ("--opt", f"{k}={v}")),
                   name)  # fmt: skip
        else:
            docker("volume", "create", name)
        volumes.names.append(name)
    plain = plain_database_volumes(spec)
    assert plain == {"old/main"}  # new/other has no volume yet: it will be made bound
    settings = ProgramSettings(databases={}, volume_root=root, unbounded_volumes=plain)
    assert database_volume_device(settings, "old", "main") is None
    assert database_volume_device(settings, "new", "main") == str(
        volume_quota.device(root, "new", "main")
    )
