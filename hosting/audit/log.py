"""An append-only, hash-chained audit log: one JSON object per line in STATE_DIR/audit.jsonl.

A JSONL file rather than a DuckDB table: `store restore` replaces the store, and the log must
outlive that (and record it). Each entry carries `seq` (1, 2, …), `prev_hash` (the previous
entry's `hash`; 64 zeros for the first) and `hash`, the sha256 of the entry's canonical JSON
without `hash`. Lines are written in that canonical form, so any changed byte shows: the JSON
breaks, the bytes stop being canonical, or the hash stops matching. A deleted or moved line
breaks `seq` and `prev_hash` of the next one. Removing lines at the end leaves a shorter valid
chain: only a copy of the head (seq and hash) kept elsewhere shows that.

Appends hold an exclusive flock on the file while they read the last entry and write the next,
so concurrent processes never interleave lines or fork the chain; each line is fsynced.
Pure except for file I/O: the caller supplies the entry's fields.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from hosting.errors import AuditError

FILENAME = "audit.jsonl"
GENESIS = "0" * 64
_CHUNK = 4096


def path_in(state_dir: Path) -> Path:
    return state_dir / FILENAME


def canonical(entry: Mapping[str, Any]) -> bytes:
    """The one byte form of an entry: sorted keys, no spaces, UTF-8."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical({k: v for k, v in entry.items() if k != "hash"})).hexdigest()


@dataclass(frozen=True)
class Head:
    """The last entry's place in the chain (seq 0 and GENESIS for an empty log)."""

    seq: int
    hash: str


def append(path: Path, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Write `fields` as the next entry (adding seq, prev_hash and hash) and return it.
    An AuditError when the log's last line is damaged: the chain cannot be continued."""
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released by close
        head = _head(fd, path)
        entry = {**fields, "seq": head.seq + 1, "prev_hash": head.hash}
        entry["hash"] = entry_hash(entry)
        data = canonical(entry) + b"\n"
        while data:  # O_APPEND: every write lands at the end, and no one else writes meanwhile
            data = data[os.write(fd, data) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:  # the new file's directory entry must survive a crash too
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return entry


def head(path: Path) -> Head:
    """The last entry's seq and hash, read from the end of the file (without a lock)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return Head(0, GENESIS)
    try:
        return _head(fd, path)
    finally:
        os.close(fd)


def _head(fd: int, path: Path) -> Head:
    size = os.fstat(fd).st_size
    if size == 0:
        return Head(0, GENESIS)
    # Read backwards until the chunk holds the newline before the last line.
    tail = b""
    pos = size
    while pos > 0 and tail.count(b"\n") < 2:
        step = min(_CHUNK, pos)
        pos -= step
        tail = os.pread(fd, step, pos) + tail
    last = tail.rsplit(b"\n", 2)[-2] if tail.endswith(b"\n") else None
    entry = _parse(last) if last is not None else None
    if entry is None or not _is_seq(entry.get("seq")) or not isinstance(entry.get("hash"), str):
        line = _count_lines(fd, size) + (0 if tail.endswith(b"\n") else 1)
        raise AuditError(
            f"the audit log {path} is damaged at line {line} (its last): the chain cannot go on",
            "`hosting audit verify` shows it; if it is a write cut short, move the file aside",
        )
    return Head(entry["seq"], entry["hash"])


def _count_lines(fd: int, size: int) -> int:
    return sum(os.pread(fd, _CHUNK, at).count(b"\n") for at in range(0, size, _CHUNK))


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:  # UnicodeDecodeError included
        return None
    return value if isinstance(value, dict) else None


def _is_seq(value: object) -> TypeGuard[int]:
    return type(value) is int  # not bool, which is an int to isinstance


def _lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    """(line number, bytes without the newline, whether a newline ended it)."""
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            ended = raw.endswith(b"\n")
            yield number, raw[:-1] if ended else raw, ended


def read(path: Path) -> tuple[list[dict[str, Any]], list[int]]:
    """Every entry that parses, in file order, and the numbers of the lines that do not.
    Reading does not verify: `verify` does."""
    if not path.exists():
        return [], []
    entries: list[dict[str, Any]] = []
    bad: list[int] = []
    for number, raw, _ in _lines(path):
        entry = _parse(raw)
        if entry is None:
            bad.append(number)
        else:
            entries.append(entry)
    return entries, bad


@dataclass(frozen=True)
class Problem:
    """The first entry that is not as it was written."""

    line: int
    seq: int | None  # as the line states it; None when the line does not say
    reason: str

    def render(self, path: Path) -> str:
        seq = f"seq {self.seq}" if self.seq is not None else "no readable seq"
        return f"{path}:{self.line} ({seq}): {self.reason}"


@dataclass(frozen=True)
class Verdict:
    entries: int  # entries checked, up to the first problem
    head: Head
    problem: Problem | None


def verify(path: Path) -> Verdict:
    """Walk the chain from the first line and stop at the first entry that breaks it."""
    prev = Head(0, GENESIS)
    if not path.exists():
        return Verdict(0, prev, None)
    for number, raw, ended in _lines(path):
        entry = _parse(raw)
        seq = entry.get("seq") if entry is not None else None
        seq = seq if _is_seq(seq) else None
        reason = _problem(entry, raw, ended, prev)
        if reason:
            return Verdict(number - 1, prev, Problem(number, seq, reason))
        assert entry is not None and seq is not None
        prev = Head(seq, entry["hash"])
    return Verdict(prev.seq, prev, None)


def _problem(entry: dict[str, Any] | None, raw: bytes, ended: bool, prev: Head) -> str | None:
    expected = prev.seq + 1
    if not ended:
        return f"incomplete line (no newline at its end); seq {expected} expected"
    if entry is None:
        return f"not a JSON object: edited or damaged; seq {expected} expected"
    seq = entry.get("seq")
    if not _is_seq(seq) or not isinstance(entry.get("hash"), str):
        return f"no seq or hash: edited; seq {expected} expected"
    if canonical(entry) != raw:
        return "edited: its bytes differ from the form it was written in"
    if entry["hash"] != entry_hash(entry):
        return "edited: its hash does not match its contents"
    if seq > expected:
        missing = f"seq {expected}" if seq == expected + 1 else f"seq {expected}–{seq - 1}"
        return f"entries deleted before it: {missing} missing"
    if seq < expected:
        return f"out of order or repeated: seq {expected} expected"
    if entry.get("prev_hash") != prev.hash:
        return "chain broken: prev_hash is not the hash of the entry before it"
    return None
