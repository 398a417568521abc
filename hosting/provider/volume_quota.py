"""Database volumes of bounded size: one ext4 filesystem per tenant, the plan's storage.

A named volume is a directory on the disk of Docker's data root: a tenant that fills its
database would fill the host. Instead each tenant with a database gets a sparse image file,
`STATE_DIR/volumes/<tenant>.ext4`, of its plan's storage (GB = 2^30 bytes, as billing counts
it), loop-mounted at `STATE_DIR/volumes/<tenant>/`. Each database volume is Docker's local
driver binding a directory in it (`type=none,o=bind,device=STATE_DIR/volumes/<tenant>/<db>`):
a tenant's databases share the plan's storage, and writing past it fails with ENOSPC inside
the tenant's filesystem only. The image takes only the blocks written. The loop device does
direct IO, so the plan's disk IO limit on the data root's disk still holds their writes.

- Apply mounts (before the engine starts any database) and re-mounts after a reboot: the
  volume's directory exists only inside the mounted filesystem, so a database whose
  filesystem is not mounted fails to start ("no such file or directory") instead of starting
  an empty cluster on the host's disk. A dockerd restart does not unmount anything.
- A plan whose storage grows grows the image and the filesystem online (resize2fs). ext4
  shrinks only unmounted: a smaller plan leaves the filesystem as it is, with a warning.
- destroy unmounts and keeps the images (the volumes are kept too); `destroy --delete-data`
  deletes them with the volumes.
- Only for a local engine (`unix://`) with util-linux and e2fsprogs; otherwise the volumes
  stay plain named volumes and apply warns. Mounting needs root: an apply without it
  proceeds only when every filesystem is already mounted.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hosting.databases.replication import replica_volume_dir
from hosting.errors import ProviderError
from hosting.spec.models import DatabaseDeployment, Spec

GIB = 2**30
IMAGE_SUFFIX = ".ext4"
MOUNT_OPTIONS = "loop,nodev,nosuid,noexec"
TOOLS = ("mount", "umount", "losetup", "findmnt", "mkfs.ext4", "resize2fs", "e2fsck", "dumpe2fs")


def root_of(state_dir: Path) -> Path:
    return state_dir.resolve() / "volumes"


def image_path(root: Path, tenant: str) -> Path:
    return root / f"{tenant}{IMAGE_SUFFIX}"


def mountpoint(root: Path, tenant: str) -> Path:
    return root / tenant


def device(root: Path, tenant: str, deployment: str) -> Path:
    """The directory a database volume binds: it exists only while the filesystem is mounted."""
    return mountpoint(root, tenant) / deployment


def driver_opts(device_path: str) -> dict[str, str]:
    """Docker local-driver options of a volume that binds `device_path`."""
    return {"type": "none", "o": "bind", "device": device_path}


@dataclass(frozen=True)
class TenantVolumes:
    size_bytes: int
    deployments: tuple[str, ...]


@dataclass
class Report:
    created: list[str] = field(default_factory=list)
    mounted: list[str] = field(default_factory=list)
    grown: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def missing_tools() -> str | None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    return f"{', '.join(missing)} not installed (util-linux, e2fsprogs)" if missing else None


def unmounted(root: Path, wanted: Mapping[str, TenantVolumes]) -> list[str]:
    """Tenants whose filesystem or a database's directory in it is missing: what a process
    without root cannot fix (a read-only check; sizes need root to read)."""
    return sorted(
        tenant
        for tenant, vols in wanted.items()
        if not os.path.ismount(mountpoint(root, tenant))
        or not all(device(root, tenant, d).is_dir() for d in vols.deployments)
    )


def _run(*args: str) -> str:
    out = subprocess.run(list(args), capture_output=True, text=True, timeout=600, check=False)
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no message"])[-1]
        raise ProviderError(
            f"{args[0]} failed: {last}",
            "the databases' filesystems are not ready; fix it and apply again",
        )
    return out.stdout


def ensure(root: Path, wanted: Mapping[str, TenantVolumes]) -> Report:
    """Each tenant's image created, mounted, at least its size, and its databases'
    directories in it. Nothing is ever shrunk or deleted here."""
    report = Report()
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)  # tenants' data: nobody but root walks it from the host
    for tenant, vols in sorted(wanted.items()):
        image, mnt = image_path(root, tenant), mountpoint(root, tenant)
        if not image.exists():
            _create(image, vols.size_bytes)
            report.created.append(tenant)
        mnt.mkdir(exist_ok=True)
        if not os.path.ismount(mnt):
            _mount(image, mnt)
            report.mounted.append(tenant)
        if not _direct_io(mnt):
            report.warnings.append(
                f"{tenant}: the databases' writes escape the plan's disk IO limit (the loop "
                "device cannot do direct IO on the filesystem holding its image)"
            )
        current = filesystem_size(image)
        if vols.size_bytes > current:
            if _grow(image, mnt, vols.size_bytes):
                report.grown.append(tenant)
            else:
                report.warnings.append(
                    f"{tenant}: the databases' filesystem stays at {current / GIB:g} GB, below "
                    f"the plan's {vols.size_bytes / GIB:g} GB: it could not grow online "
                    "(CAP_SYS_RESOURCE) and is in use; apply again with its databases stopped"
                )
        elif vols.size_bytes < current:
            report.warnings.append(
                f"{tenant}: the databases' filesystem stays at {current / GIB:g} GB, above the "
                f"plan's {vols.size_bytes / GIB:g} GB (ext4 shrinks only unmounted)"
            )
        if not os.path.ismount(mnt):  # never a database directory on the host's own disk
            raise ProviderError(f"{tenant}: {mnt} is not mounted", "check `dmesg` and apply again")
        for deployment in vols.deployments:
            (mnt / deployment).mkdir(exist_ok=True)
    return report


def _create(image: Path, size: int) -> None:
    partial = image.with_suffix(".partial")
    with open(partial, "wb") as f:
        f.truncate(size)  # sparse: blocks are taken as the tenant writes
    os.chmod(partial, 0o600)
    # -m 0: no blocks reserved for root, the tenant gets the whole plan
    _run("mkfs.ext4", "-q", "-F", "-m", "0", "-E", "nodiscard", str(partial))
    partial.rename(image)  # an image exists only once it holds a filesystem


def filesystem_size(image: Path) -> int:
    """The ext4 filesystem's size in bytes, from its superblock (the file may be larger)."""
    fields = {}
    for line in _run("dumpe2fs", "-h", str(image)).splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return int(fields["Block count"]) * int(fields["Block size"])


def _grow(image: Path, mnt: Path, size: int) -> bool:
    """Online (resize2fs on the mounted loop device, which needs CAP_SYS_RESOURCE); failing
    that, offline when no container holds the filesystem. False: neither was possible."""
    loop = _run("findmnt", "-n", "-o", "SOURCE", "--mountpoint", str(mnt)).strip()
    if image.stat().st_size < size:
        with open(image, "r+b") as f:
            f.truncate(size)
    _run("losetup", "-c", loop)  # the loop device learns the file's new size
    online = subprocess.run(["resize2fs", loop], capture_output=True, timeout=600)
    if online.returncode == 0:
        return True
    if _other_mounts(mnt):
        return False  # a container's volume binds it: a database runs on it
    if subprocess.run(["umount", str(mnt)], capture_output=True, timeout=120).returncode != 0:
        return False
    # The loop device detaches when the filesystem's last mount goes: until then a mount
    # elsewhere (a container's volume the engine is still releasing) has it live, and an
    # offline resize under it would corrupt it.
    deadline = time.monotonic() + 10
    while _run("losetup", "-j", str(image)).strip():
        if time.monotonic() > deadline:
            _mount(image, mnt)
            return False
        time.sleep(0.2)
    try:
        fsck = subprocess.run(["e2fsck", "-f", "-y", str(image)], capture_output=True, timeout=600)
        if fsck.returncode not in (0, 1):  # 1: errors corrected
            raise ProviderError(
                f"e2fsck of {image.name} failed (exit {fsck.returncode})",
                f"check the image by hand: e2fsck -f {image}",
            )
        _run("resize2fs", str(image))
    finally:
        _mount(image, mnt)
    return True


def _direct_io(mnt: Path) -> bool:
    """Direct IO on the loop device: its writes to the image then reach the disk in the
    writing container's blkio cgroup, where the plan's disk IO limit applies (through the
    page cache they would not: nothing throttles the loop device itself)."""
    loop = _run("findmnt", "-n", "-o", "SOURCE", "--mountpoint", str(mnt)).strip()
    flag = Path(f"/sys/block/{Path(loop).name}/loop/dio")
    if flag.is_file() and flag.read_text().strip() == "1":
        return True
    subprocess.run(["losetup", "--direct-io=on", loop], capture_output=True, timeout=60)
    return flag.is_file() and flag.read_text().strip() == "1"


def _mount(image: Path, mnt: Path) -> None:
    """Mount the image at mnt. If a loop device still holds it (the filesystem lives on in a
    container's volume mount after ours went), mount that device: a second loop device on the
    same file would be a second, independent ext4 on the same blocks, and corrupt it."""
    attached = _run("losetup", "-n", "-O", "NAME", "-j", str(image)).split()
    if attached:
        _run("mount", "-o", MOUNT_OPTIONS.removeprefix("loop,"), attached[0], str(mnt))
    else:
        _run("mount", "-o", MOUNT_OPTIONS, str(image), str(mnt))


def _other_mounts(mnt: Path) -> list[str]:
    """Mount points other than `mnt` of the filesystem mounted at `mnt` (same device)."""
    mounts = [line.split() for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    devices = {m[2] for m in mounts if m[4] == str(mnt)}
    return [m[4] for m in mounts if m[2] in devices and m[4] != str(mnt)]


def unmount(root: Path, keep: Iterable[str] = ()) -> list[str]:
    """Unmount every tenant filesystem under root but `keep`'s; returns the ones still busy
    (in use by a container: left mounted)."""
    busy = []
    for image in sorted(root.glob(f"*{IMAGE_SUFFIX}")) if root.is_dir() else []:
        mnt = mountpoint(root, image.name.removesuffix(IMAGE_SUFFIX))
        if mnt.name not in keep and os.path.ismount(mnt):
            out = subprocess.run(["umount", str(mnt)], capture_output=True, timeout=120)
            if out.returncode != 0:
                busy.append(mnt.name)
    return busy


def delete(root: Path) -> list[str]:
    """Unmount and delete every image and mount directory under root (destroy --delete-data).
    A filesystem still mounted is left whole; returns those tenants."""
    busy = unmount(root)
    for image in sorted(root.glob(f"*{IMAGE_SUFFIX}")) if root.is_dir() else []:
        tenant = image.name.removesuffix(IMAGE_SUFFIX)
        if tenant in busy:
            continue
        mnt = mountpoint(root, tenant)
        if mnt.is_dir() and not os.path.ismount(mnt):
            shutil.rmtree(mnt)
        image.unlink()
    return busy


def remove_stale_replicas(root: Path, wanted: Mapping[str, TenantVolumes]) -> None:
    """Delete read replicas' copies that are no longer declared: a replica declared again
    must clone its primary afresh, since its slot went with it."""
    for tenant, vols in wanted.items():
        mnt = mountpoint(root, tenant)
        if not os.path.ismount(mnt):
            continue
        for entry in mnt.iterdir():
            if ".replica" in entry.name and entry.name not in vols.deployments:
                shutil.rmtree(entry, ignore_errors=True)


def wanted(spec: Spec) -> dict[str, TenantVolumes]:
    """Tenants with a database (stopped ones too: their data stays), sized by their plan."""
    out = {}
    for tid, tenant in spec.tenants.items():
        dbs = tuple(
            folder
            for did, dep in tenant.deployments.items()
            if isinstance(dep, DatabaseDeployment)
            for folder in (
                did,
                *(replica_volume_dir(did, i) for i in range(1, dep.replicas + 1)),
            )
        )
        if dbs:
            out[tid] = TenantVolumes(spec.plan_of(tenant).storage_gb * GIB, dbs)
    return out


def usable(spec: Spec) -> str | None:
    """Why this platform's database volumes cannot be bounded, or None when they are: the
    same answer for plan and apply on one machine, whoever runs them, so that a plan made
    without root (a read-only preview) declares the volumes apply makes."""
    if spec.platform.target == "swarm":
        return "a swarm's volumes live on its nodes"
    if not spec.platform.docker.host.startswith("unix://"):
        return "the engine is on another host"
    return missing_tools()
