"""Which device a disk IO limit names: the whole disk under a path, from a /sys tree."""

from __future__ import annotations

import os
from pathlib import Path

from hosting.provider.blockdev import device_of


def sys_tree(root: Path, path: Path, *, partition: bool) -> Path:
    """A /sys/dev/block whose entry for `path`'s device is vdb1 on vdb (or vdb itself)."""
    dev = os.stat(path).st_dev
    disk = root / "devices" / "vdb"
    disk.mkdir(parents=True)
    (disk / "uevent").write_text("MAJOR=254\nMINOR=16\nDEVNAME=vdb\nDEVTYPE=disk\n")
    target = disk
    if partition:
        target = disk / "vdb1"
        target.mkdir()
        (target / "partition").write_text("1\n")
        (target / "uevent").write_text("DEVNAME=vdb1\nDEVTYPE=partition\n")
    block = root / "dev" / "block"
    block.mkdir(parents=True)
    (block / f"{os.major(dev)}:{os.minor(dev)}").symlink_to(target)
    return block


def test_a_partition_resolves_to_its_disk(tmp_path: Path) -> None:
    block = sys_tree(tmp_path / "sys", tmp_path, partition=True)
    assert device_of(str(tmp_path), block) == "/dev/vdb"


def test_a_whole_disk_is_itself(tmp_path: Path) -> None:
    block = sys_tree(tmp_path / "sys", tmp_path, partition=False)
    assert device_of(str(tmp_path), block) == "/dev/vdb"


def test_no_block_device_or_no_path_gives_none(tmp_path: Path) -> None:
    empty = tmp_path / "sys"
    empty.mkdir()
    assert device_of(str(tmp_path), empty) is None
    assert device_of(str(tmp_path / "missing"), empty) is None
