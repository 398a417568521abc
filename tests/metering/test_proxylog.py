"""Access logs read incrementally: offsets survive restarts, rotation and truncation."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hosting.metering.proxylog import read_new


def _line(host: str, status: int = 200, size: int = 100, read: int = 7, dur: float = 0.01) -> str:
    entry = {
        "level": "info",
        "logger": "http.log.access.edge",
        "msg": "handled request",
        "request": {"host": host, "method": "GET", "uri": "/"},
        "bytes_read": read,
        "duration": dur,
        "size": size,
        "status": status,
    }
    return json.dumps(entry) + "\n"


def test_counts_per_host_and_resumes_after_the_last_complete_line(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(_line("a.test:443") + _line("a.test", 502, 10, 0, 0.03) + _line("b.test"))
    with log.open("a") as fh:
        fh.write(_line("a.test")[:20])  # a line being written right now
    first = read_new(log, None)
    a = first.hosts["a.test"]
    assert (a.requests, a.errors, a.bytes_out, a.bytes_in) == (2, 1, 110, 7)
    assert abs(a.duration_s - 0.04) < 1e-9
    assert first.hosts["b.test"].requests == 1
    with log.open("a") as fh:
        fh.write(_line("a.test")[20:] + _line("b.test"))
    second = read_new(log, first.offset)
    assert second.hosts["a.test"].requests == 1
    assert second.hosts["b.test"].requests == 1
    assert read_new(log, second.offset).lines == 0


def test_rotation_reads_the_rest_of_the_old_file_then_the_new_one(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(_line("a.test") * 3)
    first = read_new(log, None)
    with log.open("a") as fh:
        fh.write(_line("a.test") * 2)  # written before rotation, not read yet
    os.rename(log, tmp_path / "access-2026-11-05T10-00-00.000.log")
    log.write_text(_line("a.test") * 4)
    second = read_new(log, first.offset)
    assert second.hosts["a.test"].requests == 6
    assert read_new(log, second.offset).lines == 0


def test_a_truncated_file_is_read_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(_line("a.test") * 5)
    first = read_new(log, None)
    log.write_text(_line("a.test"))  # copytruncate-style: same inode, shorter
    assert read_new(log, first.offset).hosts["a.test"].requests == 1


def test_missing_log_and_bad_lines(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    missing = read_new(log, None)
    assert not missing.found and missing.offset is None
    log.write_text("not json\n" + _line("a.test") + '{"msg": "no request"}\n')
    got = read_new(log, None)
    assert got.lines == 3 and got.bad_lines == 2 and got.hosts["a.test"].requests == 1
