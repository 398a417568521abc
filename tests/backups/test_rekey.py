"""A passphrase change re-encrypts the backups: swapped in only when the stack's step
worked, untouched when it failed; plain, damaged and foreign files are left as they are."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest

from hosting.backups import crypto
from hosting.backups.files import deployment_dir, write_sidecar
from hosting.backups.reading import check
from hosting.backups.rekey import rekeyed
from hosting.errors import SecretError

OLD, NEW = "old-passphrase-1", "new-passphrase-2"
DUMP = b"PGDMP" + bytes(range(256)) * 5000  # over one chunk


def _backup(state: Path, deployment: str, name: str, passphrase: str | None) -> Path:
    folder = deployment_dir(state, "acme", deployment)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    data = DUMP if passphrase is None else b"".join(crypto.seal([DUMP], passphrase))
    path.write_bytes(data)
    write_sidecar(path, {"sha256": hashlib.sha256(data).hexdigest(), "database": "acme_db"})
    return path


def _plain(path: Path, passphrase: str) -> bytes:
    with path.open("rb") as fh:
        return b"".join(crypto.unseal(fh, passphrase, path.name))


def test_backups_follow_the_new_passphrase_and_keep_valid_checksums(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _backup(tmp_path, "db", "20260101T000000.000Z.dump", OLD)
    b = _backup(tmp_path, "other", "20260102T000000.000Z.dump", OLD)
    plain = _backup(tmp_path, "db", "20250101T000000.000Z.dump", None)
    foreign = _backup(tmp_path, "db", "20250102T000000.000Z.dump", "a third one")
    foreign_bytes = foreign.read_bytes()
    with rekeyed(tmp_path, OLD, NEW) as result:
        assert _plain(a, OLD) == DUMP  # nothing swapped before the block has succeeded
    assert sorted(result.done) == [f"acme/db/{a.name}", f"acme/other/{b.name}"]
    assert result.unencrypted == [f"acme/db/{plain.name}"]
    assert result.unreadable == [f"acme/db/{foreign.name}"]
    for path in (a, b):
        assert _plain(path, NEW) == DUMP
        with pytest.raises(SecretError):
            _plain(path, OLD)
        meta = json.loads(path.with_suffix(".json").read_text())
        assert meta["database"] == "acme_db"  # the rest of the sidecar kept
        monkeypatch.setenv("HOSTING_PASSPHRASE", NEW)
        assert check(path, meta["sha256"]) == "encrypted"
    assert foreign.read_bytes() == foreign_bytes and plain.read_bytes() == DUMP
    assert [p.name for p in tmp_path.rglob("*.partial")] == []
    with rekeyed(tmp_path, OLD, NEW) as again:  # run twice: nothing left to do
        pass
    assert again.done == []


def test_a_failed_change_leaves_every_backup_as_it_was(tmp_path: Path) -> None:
    a = _backup(tmp_path, "db", "20260101T000000.000Z.dump", OLD)
    before = (a.read_bytes(), a.with_suffix(".json").read_text())
    with pytest.raises(RuntimeError, match="stack refused"), rekeyed(tmp_path, OLD, NEW):
        assert len(list(a.parent.glob(".*.partial"))) == 1  # prepared next to it
        raise RuntimeError("stack refused")
    assert (a.read_bytes(), a.with_suffix(".json").read_text()) == before
    assert list(a.parent.glob(".*.partial")) == []


def test_a_damaged_backup_does_not_stop_the_change(tmp_path: Path) -> None:
    a = _backup(tmp_path, "db", "20260101T000000.000Z.dump", OLD)
    data = bytearray(a.read_bytes())
    data[-5] ^= 1
    a.write_bytes(bytes(data))
    with rekeyed(tmp_path, OLD, NEW) as result:
        pass
    assert result.unreadable == [f"acme/db/{a.name} (damaged)"] and result.done == []
    assert a.read_bytes() == bytes(data)
    header = crypto.read_header(io.BytesIO(bytes(data)), a.name)
    assert crypto.opens_with(header, OLD)


def test_base_backups_and_sealed_wal_follow_the_new_passphrase_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Else a passphrase change would leave point-in-time recovery unable to open them.
    folder = deployment_dir(tmp_path, "acme", "db")
    (folder / "base").mkdir(parents=True)
    (folder / "wal").mkdir()
    base = folder / "base" / "20260101T000000.000Z.base"
    data = b"".join(crypto.seal([DUMP], OLD))
    base.write_bytes(data)
    write_sidecar(base, {"sha256": hashlib.sha256(data).hexdigest(), "first_wal": "W"})
    wal = folder / "wal" / "000000010000000000000001.gz.enc"
    wal.write_bytes(b"".join(crypto.seal([DUMP], OLD)))
    plain_wal = folder / "wal" / "000000010000000000000002.gz"  # not sealed yet: not touched
    plain_wal.write_bytes(b"gzip")
    with rekeyed(tmp_path, OLD, NEW) as result:
        assert _plain(wal, OLD) == DUMP
    assert sorted(result.done) == [f"acme/db/base/{base.name}", f"acme/db/wal/{wal.name}"]
    assert _plain(base, NEW) == DUMP and _plain(wal, NEW) == DUMP
    meta = json.loads(base.with_suffix(".json").read_text())
    assert meta["first_wal"] == "W"
    monkeypatch.setenv("HOSTING_PASSPHRASE", NEW)
    assert check(base, meta["sha256"]) == "encrypted"
    assert plain_wal.read_bytes() == b"gzip"
    assert not (folder / "wal" / "000000010000000000000001.json").exists()  # WAL has none
    assert [p.name for p in tmp_path.rglob("*.partial")] == []
