"""The chain itself: entries link, any edited byte or removed line is found and named, and
processes appending at once never fork the chain."""

from __future__ import annotations

import hashlib
import itertools
import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hosting.audit import log
from hosting.errors import AuditError
from tests.conftest import REPO

ZEROS = "0" * 64


def _fill(path: Path, n: int) -> list[dict[str, object]]:
    return [log.append(path, {"what": {"command": "invoice run"}, "n": i}) for i in range(n)]


def _own_hash(entry: dict[str, object]) -> str:
    """The hash as the format defines it, computed here rather than by the module."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def test_entries_link_by_seq_and_hash(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _fill(path, 3)
    lines = path.read_bytes().splitlines()
    entries = [json.loads(line) for line in lines]
    assert [e["seq"] for e in entries] == [1, 2, 3]
    assert [e["n"] for e in entries] == [0, 1, 2]
    assert entries[0]["prev_hash"] == ZEROS
    for before, after in itertools.pairwise(entries):
        assert after["prev_hash"] == before["hash"]
    for e in entries:
        assert e["hash"] == _own_hash(e)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    verdict = log.verify(path)
    assert verdict.problem is None and verdict.entries == 3
    assert verdict.head == log.Head(3, entries[2]["hash"])


def test_a_missing_log_is_an_empty_intact_chain(tmp_path: Path) -> None:
    verdict = log.verify(tmp_path / "audit.jsonl")
    assert (verdict.entries, verdict.problem) == (0, None)
    assert log.head(tmp_path / "audit.jsonl") == log.Head(0, ZEROS)


def test_every_single_byte_edit_of_an_entry_is_found_at_that_entry(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _fill(path, 3)
    original = path.read_bytes()
    start = original.index(b"\n") + 1  # line 2, its newline included
    end = original.index(b"\n", start) + 1
    for at in range(start, end):
        edited = bytearray(original)
        edited[at] ^= 0x01  # a different byte, still ASCII
        path.write_bytes(bytes(edited))
        problem = log.verify(path).problem
        assert problem is not None, f"byte {at - start} of line 2 edited, not detected"
        assert problem.line == 2, (at - start, problem)


def test_a_value_edit_names_the_entry_and_its_seq(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _fill(path, 3)
    path.write_bytes(path.read_bytes().replace(b'"n":1', b'"n":7'))
    verdict = log.verify(path)
    assert verdict.problem == log.Problem(2, 2, "edited: its hash does not match its contents")
    assert verdict.entries == 1
    assert verdict.problem.render(path) == (
        f"{path}:2 (seq 2): edited: its hash does not match its contents"
    )


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _fill(path, 3)
    lines = path.read_bytes().splitlines()
    forged = json.loads(lines[1])
    forged["n"] = 7
    forged["hash"] = _own_hash(forged)
    lines[1] = json.dumps(forged, sort_keys=True, separators=(",", ":")).encode()
    path.write_bytes(b"\n".join(lines) + b"\n")
    problem = log.verify(path).problem
    assert problem is not None and (problem.line, problem.seq) == (3, 3)
    assert "chain broken" in problem.reason


@pytest.mark.parametrize(("deleted", "named_seq"), [(0, 2), (1, 3)])
def test_a_deleted_line_is_found_at_the_entry_after_it(
    tmp_path: Path, deleted: int, named_seq: int
) -> None:
    path = tmp_path / "audit.jsonl"
    _fill(path, 3)
    lines = path.read_bytes().splitlines(keepends=True)
    del lines[deleted]
    path.write_bytes(b"".join(lines))
    problem = log.verify(path).problem
    assert problem is not None
    assert (problem.line, problem.seq) == (deleted + 1, named_seq)
    assert f"seq {deleted + 1} missing" in problem.reason


def test_swapped_lines_are_found(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _fill(path, 3)
    a, b, c = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(a + c + b)
    problem = log.verify(path).problem
    assert problem is not None and (problem.line, problem.seq) == (2, 3)


def test_a_cut_short_last_line_is_named_and_stops_further_appends(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _fill(path, 2)
    path.write_bytes(path.read_bytes()[:-10])
    problem = log.verify(path).problem
    assert problem is not None and (problem.line, problem.seq) == (2, None)
    assert "incomplete" in problem.reason
    with pytest.raises(AuditError, match=r"damaged at line 2 \(its last\)"):
        log.append(path, {"n": 9})
    assert log.verify(path).problem == problem  # nothing was written after it


def test_read_returns_entries_and_names_unreadable_lines(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _fill(path, 2)
    with path.open("ab") as fh:
        fh.write(b"not json\n")
    entries, bad = log.read(path)
    assert [e["seq"] for e in entries] == [1, 2]
    assert bad == [3]


def test_a_long_last_entry_is_read_back_from_the_end(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log.append(path, {"n": 0})
    big = log.append(path, {"n": 1, "pad": "x" * 20000})  # several read-back chunks long
    assert log.append(path, {"n": 2})["prev_hash"] == big["hash"]
    assert log.verify(path).entries == 3


APPENDER = """
import sys
from pathlib import Path
from hosting.audit import log
path, who, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for i in range(count):
    log.append(path, {"who": who, "i": i})
"""


def test_processes_appending_at_once_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    writers, each = 4, 60
    procs = [
        subprocess.Popen([sys.executable, "-c", APPENDER, str(path), f"w{w}", str(each)], cwd=REPO)
        for w in range(writers)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * writers
    verdict = log.verify(path)
    assert verdict.problem is None
    assert verdict.entries == writers * each
    entries, bad = log.read(path)
    assert bad == []
    assert sorted((e["who"], e["i"]) for e in entries) == sorted(
        (f"w{w}", i) for w in range(writers) for i in range(each)
    )
