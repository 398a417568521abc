"""cgroup v2 files (this machine is v1, so the real-container tests cover v1): the same
reader on a v2 layout written the way the kernel writes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from hosting.metering import cgroups

NET_DEV = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     500       5    0    0    0     0          0         0      500       5    0    0    0     0       0          0
  eth0:    1200      12    0    0    0     0          0         0     3400      20    0    0    0     0       0          0
  eth1:      30       1    0    0    0     0          0         0       40       1    0    0    0     0       0          0
"""  # noqa: E501


def test_v2_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proc, root = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "42" / "net").mkdir(parents=True)
    (proc / "42" / "cgroup").write_text("0::/system.slice/docker-abc.scope\n")
    (proc / "42" / "net" / "dev").write_text(NET_DEV)
    group = root / "system.slice" / "docker-abc.scope"
    group.mkdir(parents=True)
    (group / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")
    (group / "memory.current").write_text("10485760\n")
    (group / "memory.stat").write_text("anon 6291456\nfile 4194304\ninactive_file 3145728\n")
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(f"30 23 0:26 / {root} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n")
    monkeypatch.setattr(cgroups, "PROC", proc)
    mounts = cgroups._mount_points.__wrapped__(str(mountinfo))
    monkeypatch.setattr(cgroups, "_mount_points", lambda: mounts)
    got = cgroups.read_counters(42)
    assert got == cgroups.Counters(2_500_000_000, 10485760 - 3145728, 1230, 3440)
    assert cgroups.pid_belongs_to(42, "abc")
    assert not cgroups.pid_belongs_to(43, "abc")
