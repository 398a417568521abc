"""Sealing the WAL archive without Docker: the server's own archive and restore commands run
by the host's sh on a folder, the sealer turning each checked segment into an encrypted one,
`kill -9` at two points of a seal, retention of sealed names, and the scratch folder a
restore reads sealed segments from."""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from hosting.backups import crypto, pitr, wal_seal
from hosting.stacks.wal_archive import ARCHIVE_COMMAND, ARCHIVE_MOUNT
from tests.backups.conftest import PASSPHRASE

MARKER = b"marker-row-7c1e-plaintext"
S1, S2, S3, S4, S5 = (f"0000000100000000000000{n:02X}" for n in (1, 2, 3, 4, 5))
HISTORY = "00000002.history"


def _segment(name: str, size: int = 3 * 2**20) -> bytes:
    # Random (so gzip cannot shrink it: several encrypted chunks) with a known row inside.
    data = bytearray(os.urandom(size))
    data[1000 : 1000 + len(MARKER) + len(name)] = MARKER + name.encode()
    return bytes(data)


def _archive(folder: Path, name: str, data: bytes) -> int:
    """The server's archive_command, run by sh on this host against `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as pg_wal:
        src = Path(pg_wal) / name
        src.write_bytes(data)
        command = ARCHIVE_COMMAND.replace(ARCHIVE_MOUNT, str(folder))
        command = command.replace("%p", str(src)).replace("%f", name)
        return subprocess.run(["sh", "-c", command], capture_output=True, check=False).returncode


def _restore(archive: Path, opened: Path, name: str, out: Path) -> tuple[int, str]:
    command = pitr.RESTORE_COMMAND.replace(pitr.OPENED_MOUNT, str(opened))
    command = command.replace(ARCHIVE_MOUNT, str(archive))
    command = command.replace("%p", str(out)).replace("%f", name)
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=False)
    return done.returncode, done.stderr


def _opened_bytes(path: Path) -> bytes:
    with path.open("rb") as fh:
        return gzip.decompress(b"".join(crypto.unseal(fh, PASSPHRASE, path.name)))


def test_sealing_replaces_each_checked_segment_by_an_encrypted_one(tmp_path: Path) -> None:
    wal = tmp_path / "wal"
    segments = {name: _segment(name) for name in (S1, S2)}
    for name, data in segments.items():
        assert _archive(wal, name, data) == 0
    assert _archive(wal, HISTORY, b"1\t0/3000000\tbefore 2026-11-25\n") == 0
    (wal / f".{S3}.123.partial").write_bytes(b"a killed archive run's")
    assert MARKER in gzip.decompress((wal / f"{S1}.gz").read_bytes())  # it is there to hide

    done = wal_seal.seal_folder(wal, lambda: PASSPHRASE)

    assert sorted(done.sealed) == sorted([S1, S2, HISTORY])
    assert done.damaged == []
    assert sorted(p.name for p in wal.iterdir()) == sorted(
        [f"{S1}.gz.enc", f"{S2}.gz.enc", f"{HISTORY}.gz.enc", f".{S3}.123.partial"]
    )
    for name, data in segments.items():
        sealed = (wal / f"{name}.gz.enc").read_bytes()
        assert sealed.startswith(crypto.MAGIC) and MARKER not in sealed
        assert _opened_bytes(wal / f"{name}.gz.enc") == data
    # Nothing new: no passphrase is needed, nothing changes.
    again = wal_seal.seal_folder(wal, _no_passphrase)
    assert (again.sealed, again.damaged) == ([], [])


def _no_passphrase() -> str:
    raise AssertionError("the passphrase was asked for with nothing to seal")


def test_a_segment_that_fails_its_checksum_is_not_sealed(tmp_path: Path) -> None:
    wal = tmp_path / "wal"
    assert _archive(wal, S1, _segment(S1)) == 0
    assert _archive(wal, S2, _segment(S2)) == 0
    (wal / f"{S1}.gz").write_bytes(gzip.compress(b"\0" * 1000))  # damaged after archiving
    (wal / f"{S2}.gz.sha256").unlink()  # its checksum gone: it cannot be checked

    done = wal_seal.seal_folder(wal, lambda: PASSPHRASE)

    assert done.sealed == []
    assert sorted(done.damaged) == [S1, S2]
    assert not list(wal.glob("*.enc")) and not list(wal.glob(".*.partial"))
    assert (wal / f"{S1}.gz").is_file() and (wal / f"{S2}.gz").is_file()


def test_the_archive_command_takes_a_sealed_segment_as_archived(tmp_path: Path) -> None:
    wal = tmp_path / "wal"
    data = _segment(S1, 2**16)
    assert _archive(wal, S1, data) == 0
    assert _archive(wal, S1, data) == 0  # identical: success
    assert _archive(wal, S1, data[:-1] + b"x") == 1  # different: refused
    wal_seal.seal_folder(wal, lambda: PASSPHRASE)
    sealed = (wal / f"{S1}.gz.enc").read_bytes()
    # PostgreSQL archives it again after a crash: done, and nothing is written beside it.
    assert _archive(wal, S1, data) == 0
    assert sorted(p.name for p in wal.iterdir()) == [f"{S1}.gz.enc"]
    assert (wal / f"{S1}.gz.enc").read_bytes() == sealed


# A real `kill -9` of a sealing process, at a chosen point: the sealer's own code runs in a
# child that sends itself SIGKILL there.
KILLER = """
import os, signal, sys
from pathlib import Path
from hosting.backups import crypto, wal_seal

point = sys.argv[2]
if point == "mid-write":
    real = crypto.seal
    def seal(chunks, passphrase):
        for n, piece in enumerate(real(chunks, passphrase)):
            if n == 2:  # the header and one chunk are written, the rest is not
                os.kill(os.getpid(), signal.SIGKILL)
            yield piece
    crypto.seal = seal
else:  # after the sealed file's rename, before the plain one is removed
    def unlink(self, missing_ok=False):
        os.kill(os.getpid(), signal.SIGKILL)
    Path.unlink = unlink
wal_seal.seal_folder(Path(sys.argv[1]), lambda: os.environ["HOSTING_PASSPHRASE"])
"""


def _killed(wal: Path, point: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", KILLER, str(wal), point], capture_output=True, check=False
    )
    assert done.returncode == -9, done.stderr


def test_kill_9_mid_seal_leaves_nothing_taken_for_a_segment_and_loses_none(
    tmp_path: Path,
) -> None:
    wal = tmp_path / "wal"
    data = _segment(S1)
    assert _archive(wal, S1, data) == 0
    plain = (wal / f"{S1}.gz").read_bytes()

    _killed(wal, "mid-write")
    assert not (wal / f"{S1}.gz.enc").exists()  # no sealed name for a partial file
    assert (wal / f"{S1}.gz").read_bytes() == plain  # and the segment is still there
    [partial] = [p for p in wal.iterdir() if p.name.startswith(".")]
    assert partial.name.endswith(".partial") and partial.stat().st_size > 0
    code, _ = _restore(wal, tmp_path / "none", S1, tmp_path / "out")
    assert code == 0 and (tmp_path / "out").read_bytes() == data  # still restorable

    _killed(wal, "after-rename")
    assert (wal / f"{S1}.gz").read_bytes() == plain  # not removed before the sealed is durable
    assert _opened_bytes(wal / f"{S1}.gz.enc") == data
    assert not [p for p in wal.iterdir() if p.name.startswith(".")]  # the old partial reused

    done = wal_seal.seal_folder(wal, lambda: PASSPHRASE)  # the next run finishes the job
    assert done.sealed == [S1]
    assert sorted(p.name for p in wal.iterdir()) == [f"{S1}.gz.enc"]
    assert _opened_bytes(wal / f"{S1}.gz.enc") == data


def test_retention_and_the_archive_summary_count_sealed_segments(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from hosting.backups import files

    wal = pitr.archive_dir(tmp_path, "t", "db")
    for name in (S1, S2, S3):
        assert _archive(wal, name, _segment(name, 4096)) == 0
    wal_seal.seal_folder(wal, lambda: PASSPHRASE)
    assert _archive(wal, S4, _segment(S4, 4096)) == 0  # not sealed yet
    assert pitr.archived_segments(tmp_path, "t", "db") == [S1, S2, S3, S4]
    summary = pitr.archive_summary(tmp_path, "t", "db")
    assert (summary.segments, summary.oldest, summary.newest) == (4, S1, S4)

    base = pitr.base_dir(tmp_path, "t", "db")
    base.mkdir(parents=True)
    now = datetime.now(UTC)
    for n, (age, first) in enumerate(((20, S1), (10, S3), (1, S4))):
        path = base / f"2026000{n}T000000.000Z.base"
        path.write_bytes(b"b")
        files.write_sidecar(
            path,
            {"started": pitr.iso(now - timedelta(days=age, minutes=1)),
             "finished": pitr.iso(now - timedelta(days=age)), "first_wal": first},
        )  # fmt: skip
    gone, segments = pitr.prune(tmp_path, "t", "db", 7)
    assert segments == [S1, S2]  # sealed ones too, with their sealed files
    assert sorted(p.name for p in wal.iterdir()) == sorted(
        [f"{S3}.gz.enc", f"{S4}.gz", f"{S4}.gz.sha256"]
    )
    assert gone == ["20260000T000000.000Z.base"]  # the 10-day-old one restores to day 7


def test_a_restore_reads_sealed_and_plain_segments_from_the_base_backups_first_on(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    wal = pitr.archive_dir(state, "t", "db")
    data = {name: _segment(name, 2**18) for name in (S1, S2, S3, S4, S5)}
    for name in (S1, S2, S3, S5):
        assert _archive(wal, name, data[name]) == 0
    assert _archive(wal, HISTORY, b"1\t0/3000000\tno recovery target specified\n") == 0
    wal_seal.seal_folder(wal, lambda: PASSPHRASE)
    assert _archive(wal, S4, data[S4]) == 0  # archived after the last seal: still plain
    damaged = wal / f"{S5}.gz.enc"
    raw = bytearray(damaged.read_bytes())
    raw[-100] ^= 1
    damaged.write_bytes(bytes(raw))

    with wal_seal.opened(state, "t", "db", first_wal=S2) as scratch:
        assert scratch.parent == wal.parent and scratch.name.startswith(".")
        assert stat.S_IMODE(scratch.stat().st_mode) == 0o755  # the server's uid reads it
        names = sorted(p.name for p in scratch.iterdir())
        assert names == sorted([f"{S2}.gz", f"{S3}.gz", f"{HISTORY}.gz", f"{S5}.damaged"])
        for name in (S2, S3, S4):
            out = tmp_path / f"restored-{name}"
            code, err = _restore(wal, scratch, name, out)
            assert code == 0, err
            assert out.read_bytes() == data[name]
        code, err = _restore(wal, scratch, HISTORY, tmp_path / "history")
        assert code == 0 and b"no recovery target" in (tmp_path / "history").read_bytes()
        code, _ = _restore(wal, scratch, S1, tmp_path / "s1")
        assert code == 1  # before the base backup: not opened, so "not archived"
        code, err = _restore(wal, scratch, S5, tmp_path / "s5")
        assert code > 125 and f"{S5}" in err and "damaged" in err  # fatal to recovery
    assert not scratch.exists()  # plaintext never stays behind
    assert sorted(p.name for p in wal.parent.iterdir()) == ["wal"]


def test_a_wrong_passphrase_stops_the_restore_before_any_container(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hosting.errors import SecretError

    wal = pitr.archive_dir(tmp_path, "t", "db")
    assert _archive(wal, S2, _segment(S2, 4096)) == 0
    wal_seal.seal_folder(wal, lambda: PASSPHRASE)
    monkeypatch.setenv("HOSTING_PASSPHRASE", "another one")
    with (
        pytest.raises(SecretError, match="another passphrase"),
        wal_seal.opened(tmp_path, "t", "db", first_wal=S1),
    ):
        pass
    assert sorted(p.name for p in wal.parent.iterdir()) == ["wal"]


def test_sealed_files_keep_the_segments_checksum_out_of_reach(tmp_path: Path) -> None:
    # The sealed file names no plaintext digest: the .sha256 goes with the plain file.
    wal = tmp_path / "wal"
    data = _segment(S1, 4096)
    assert _archive(wal, S1, data) == 0
    digest = hashlib.sha256((wal / f"{S1}.gz").read_bytes()).hexdigest().encode()
    wal_seal.seal_folder(wal, lambda: PASSPHRASE)
    for p in wal.iterdir():
        assert digest not in p.read_bytes()


def test_a_restore_in_progress_holds_sealing_off_and_a_dump_does_not(tmp_path: Path) -> None:
    from hosting.backups import files
    from hosting.backups.pg import _locked

    wal = pitr.archive_dir(tmp_path, "t", "db")
    assert _archive(wal, S1, _segment(S1, 4096)) == 0
    left = files.deployment_dir(tmp_path, "t", "db") / f"{wal_seal.OPENED_PREFIX}dead"
    left.mkdir()  # a scratch folder a killed restore left
    (left / f"{S1}.gz").write_bytes(b"plaintext")
    with wal_seal.sealing_held(tmp_path, "t", "db"):
        held = wal_seal.seal(tmp_path, "t", "db")
        assert held.busy and held.sealed == [] and left.exists()  # could be a live restore's
    with _locked(files.deployment_dir(tmp_path, "t", "db"), "t/db"):  # a dump running
        done = wal_seal.seal(tmp_path, "t", "db")
    assert not done.busy and done.sealed == [S1]
    assert not left.exists()


def test_a_sealed_copy_that_does_not_open_is_made_again_from_the_plain_one(
    tmp_path: Path,
) -> None:
    wal = tmp_path / "wal"
    data = _segment(S1, 4096)
    assert _archive(wal, S1, data) == 0
    plain = (wal / f"{S1}.gz").read_bytes()
    # Beside it, as a killed run would leave it, but under another passphrase.
    (wal / f"{S1}.gz.enc").write_bytes(b"".join(crypto.seal([plain], "an older passphrase")))
    assert wal_seal.seal_folder(wal, lambda: PASSPHRASE).sealed == [S1]
    assert _opened_bytes(wal / f"{S1}.gz.enc") == data
    assert sorted(p.name for p in wal.iterdir()) == [f"{S1}.gz.enc"]
