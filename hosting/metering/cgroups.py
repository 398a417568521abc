"""Counters read straight from the kernel, as cAdvisor does: a container's cgroup (v1 or v2)
for CPU time and memory, and its network namespace's /proc/<pid>/net/dev for bytes.

The cgroup directory comes from /proc/<pid>/cgroup, so the cgroupfs and systemd drivers and
both hierarchy versions are handled the same way. On a hybrid host (v1 controllers plus an
empty unified tree, as here) the v1 controllers win.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class Counters:
    cpu_ns: int  # cumulative CPU time of the container's cgroup
    memory_bytes: int  # working set: usage minus inactive file cache
    rx_bytes: int  # cumulative, all interfaces but lo
    tx_bytes: int


class CgroupMissing(Exception):
    """The process or its cgroup is gone (the container stopped between listing and reading)."""


@functools.cache
def _mount_points(mountinfo: str = "/proc/self/mountinfo") -> dict[str, Path]:
    """Controller name (or "" for the unified v2 tree) → mount point."""
    found: dict[str, Path] = {}
    for line in Path(mountinfo).read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        fstype, mount, options = rfields[0], Path(fields[4]), rfields[2].split(",")
        if fstype == "cgroup2":
            found.setdefault("", mount)
        elif fstype == "cgroup":
            for opt in options:
                if opt in ("cpu", "cpuacct", "memory"):
                    found.setdefault(opt, mount)
    return found


def _cgroup_paths(pid: int) -> dict[str, str]:
    try:
        text = (PROC / str(pid) / "cgroup").read_text()
    except OSError as exc:
        raise CgroupMissing(f"process {pid} is gone") from exc
    paths: dict[str, str] = {}
    for line in text.splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


def _read_int(path: Path) -> int:
    return int(path.read_text().strip())


def _stat(path: Path) -> dict[str, int]:
    out = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def read_net_dev(pid: int) -> tuple[int, int]:
    """(rx, tx) bytes summed over the namespace's interfaces except loopback."""
    rx = tx = 0
    try:
        lines = (PROC / str(pid) / "net" / "dev").read_text().splitlines()[2:]
    except OSError as exc:
        raise CgroupMissing(f"process {pid} is gone") from exc
    for line in lines:
        name, _, data = line.partition(":")
        if name.strip() == "lo":
            continue
        cols = data.split()
        rx += int(cols[0])
        tx += int(cols[8])
    return rx, tx


def read_counters(pid: int) -> Counters:
    mounts = _mount_points()
    paths = _cgroup_paths(pid)
    try:
        if "cpuacct" in paths and "cpuacct" in mounts and "memory" in mounts:
            cpu_dir = mounts["cpuacct"] / paths["cpuacct"].lstrip("/")
            mem_dir = mounts["memory"] / paths["memory"].lstrip("/")
            cpu_ns = _read_int(cpu_dir / "cpuacct.usage")
            usage = _read_int(mem_dir / "memory.usage_in_bytes")
            inactive = _stat(mem_dir / "memory.stat").get("total_inactive_file", 0)
        else:
            unified = mounts[""] / paths[""].lstrip("/")
            cpu_ns = _stat(unified / "cpu.stat")["usage_usec"] * 1000
            usage = _read_int(unified / "memory.current")
            inactive = _stat(unified / "memory.stat").get("inactive_file", 0)
    except (OSError, KeyError, ValueError) as exc:
        raise CgroupMissing(f"cgroup of process {pid} is gone or unreadable: {exc}") from exc
    rx, tx = read_net_dev(pid)
    return Counters(cpu_ns, max(0, usage - inactive), rx, tx)


def pid_belongs_to(pid: int, container_id: str) -> bool:
    """Whether a cached pid still is the container's (a restart gives a new one)."""
    try:
        return container_id in (PROC / str(pid) / "cgroup").read_text()
    except OSError:
        return False
