"""The edge's JSON access logs, read incrementally: requests, response time, 5xx errors and
bytes per host.

Where to resume is kept as (inode, offset after the last complete line) per log path and
committed in the same transaction as the samples built from those lines, so an agent killed
at any moment neither skips nor repeats a request. When the inode changes the file was
rotated: the rest of the old file is read first (found by its inode in the same folder),
then the new one from its start. A file shorter than the offset was truncated in place.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

MAX_READ_BYTES = 256 * 1024 * 1024  # per file and cycle; the rest waits for the next cycle


@dataclass(frozen=True)
class LogOffset:
    path: str
    inode: int
    offset: int


@dataclass
class HostStats:
    requests: int = 0
    duration_s: float = 0.0
    errors: int = 0  # status >= 500
    bytes_in: int = 0  # request bodies (bytes_read)
    bytes_out: int = 0  # response bodies (size)
    log_bytes: int = 0  # this host's share of the log files

    def add(self, other: HostStats) -> None:
        self.requests += other.requests
        self.duration_s += other.duration_s
        self.errors += other.errors
        self.bytes_in += other.bytes_in
        self.bytes_out += other.bytes_out
        self.log_bytes += other.log_bytes


@dataclass
class LogRead:
    hosts: dict[str, HostStats] = field(default_factory=dict)
    offset: LogOffset | None = None
    lines: int = 0
    bad_lines: int = 0
    found: bool = False  # the log exists (an edge is writing it)


def normalize_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if host.startswith("["):  # [v6]:port
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _parse(chunk: bytes, into: LogRead) -> None:
    for raw in chunk.split(b"\n"):
        if not raw.strip():
            continue
        into.lines += 1
        try:
            entry = json.loads(raw)
            request = entry["request"]
            host = normalize_host(str(request.get("host", "")))
            status = int(entry.get("status", 0))
            duration = float(entry.get("duration", 0.0))
            size = int(entry.get("size", 0))
            read = int(entry.get("bytes_read", 0))
        except (ValueError, KeyError, TypeError, AttributeError):
            into.bad_lines += 1
            continue
        stats = into.hosts.setdefault(host, HostStats())
        stats.requests += 1
        stats.duration_s += duration
        stats.errors += status >= 500
        stats.bytes_in += read
        stats.bytes_out += size
        stats.log_bytes += len(raw) + 1


def _read_complete_lines(path: Path, start: int, into: LogRead) -> int:
    """Parse complete lines from `start`; returns the offset after the last one."""
    with path.open("rb") as fh:
        fh.seek(start)
        data = fh.read(MAX_READ_BYTES)
    end = data.rfind(b"\n")
    if end < 0:
        return start
    _parse(data[: end + 1], into)
    return start + end + 1


def _find_by_inode(folder: Path, inode: int) -> Path | None:
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False) and entry.inode() == inode:
                    return Path(entry.path)
    except OSError:
        return None
    return None


def read_new(path: Path, saved: LogOffset | None) -> LogRead:
    """Everything appended to `path` since `saved`, and the offset to save with it."""
    result = LogRead()
    try:
        st = path.stat()
    except FileNotFoundError:
        result.offset = saved  # not created yet (no request so far) or mid-rotation
        return result
    result.found = True
    start = 0
    if saved is not None and saved.inode == st.st_ino:
        start = saved.offset if st.st_size >= saved.offset else 0  # else: truncated in place
    elif saved is not None:
        rotated = _find_by_inode(path.parent, saved.inode)
        if rotated is not None:
            _read_complete_lines(rotated, saved.offset, result)
    end = _read_complete_lines(path, start, result)
    result.offset = LogOffset(str(path), st.st_ino, end)
    return result
