"""One apply at a time per state directory, held from the saved plan's staleness check to
the end of the update: the engine's stack lock alone leaves a gap between the two, in which a
second `apply FILE` could pass the check and then apply the same plan again."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hosting.errors import ConcurrentUpdateError


@contextmanager
def apply_lock(state_dir: Path) -> Iterator[None]:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "apply.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConcurrentUpdateError(
                f"another apply is running with the state directory {state_dir}",
                "wait for it to finish, then plan again: its changes make a saved plan stale",
            ) from None
        yield
    finally:
        os.close(fd)  # closing releases the lock, also when the process dies
