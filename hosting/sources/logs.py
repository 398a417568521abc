"""`hosting logs T/D --build [--follow]`: the build log, and while a build runs, its new lines
as they are written."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path


def follow(log: Path, marker: Path, emit: Callable[[str], None], poll_s: float = 0.2) -> None:
    """Emit the log's text, then its new text while `marker` says a build runs; return once
    the build has ended and every line it wrote has been emitted."""
    with log.open(encoding="utf-8", errors="replace") as f:
        while True:
            running = marker.exists()  # read before the text: no last line can be missed
            chunk = f.read()
            if chunk:
                emit(chunk)
            elif not running:
                return
            else:
                time.sleep(poll_s)
