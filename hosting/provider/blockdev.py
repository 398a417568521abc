"""The block device behind Docker's data root, where disk IO limits apply.

The kernel throttles IO per device (blkio / io.max), and Docker names the device by its
node. Images, container layers and named volumes all live under the data root, so one device
covers a container's writes. A partition resolves to its disk, as throttling wants.
"""

from __future__ import annotations

import os
from pathlib import Path

SYS_BLOCK = Path("/sys/dev/block")


def device_of(path: str, sys_block: Path = SYS_BLOCK) -> str | None:
    """/dev/NAME of the whole disk holding `path`, or None when it is not a local block
    device (a network filesystem, or a path on another machine)."""
    try:
        dev = os.stat(path).st_dev
    except OSError:
        return None
    node = sys_block / f"{os.major(dev)}:{os.minor(dev)}"
    if not node.exists():
        return None
    entry = node.resolve()
    if (entry / "partition").exists():
        entry = entry.parent
    name = _devname(entry) or entry.name
    return f"/dev/{name}"


def _devname(entry: Path) -> str | None:
    try:
        for line in (entry / "uevent").read_text().splitlines():
            if line.startswith("DEVNAME="):
                return line.split("=", 1)[1]
    except OSError:
        return None
    return None
