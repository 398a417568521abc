"""Backups follow the passphrase: `secrets change-passphrase` re-encrypts them too, or the
old ones would be unreadable under the new passphrase.

Every encrypted file: the dumps, point-in-time recovery's base backups (`base/`) and sealed
WAL (`wal/*.gz.enc`); plain WAL the server just archived is sealed later, under the new one.

Two steps around the stack's own re-encryption: before it, every backup sealed under the old
passphrase is re-sealed under the new one into a hidden partial file next to it (the
originals untouched, each deployment's backup lock held so no backup starts meanwhile);
after it succeeded, the partials replace the originals and the sidecars get the new
checksums. If the stack's step fails, the partials are deleted and nothing changed. Needs
the free disk space of the largest backup set once more, for the time of the change.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from hosting.backups import crypto, files, reading, wal_seal
from hosting.backups.pg import _locked

REKEY = ".rekey" + files.PARTIAL


@dataclass(frozen=True)
class _File:
    ref: str  # tenant/deployment/[base/|wal/]name
    path: Path
    sidecar: bool  # a .json beside it whose sha256 and size follow


@dataclass
class Rekeyed:
    done: list[str] = field(default_factory=list)  # tenant/deployment/file re-encrypted
    unencrypted: list[str] = field(default_factory=list)  # from before encryption: left as is
    unreadable: list[str] = field(default_factory=list)  # under neither passphrase
    _pending: list[tuple[_File, Path, str]] = field(default_factory=list)


def _found(state_dir: Path) -> list[_File]:
    out = [
        _File(f"{b.tenant}/{b.deployment}/{b.name}", b.path, True)
        for b in files.list_backups(state_dir)
    ]
    root = files.backups_root(state_dir)
    for home in sorted(root.glob("*/*")) if root.is_dir() else []:
        if not home.is_dir() or home.name.startswith(".") or home.parent.name.startswith("."):
            continue
        ref = f"{home.parent.name}/{home.name}"
        for sub, suffix, sidecar in (("base", ".base", True), ("wal", ".gz.enc", False)):
            for path in sorted((home / sub).glob("*" + suffix)):
                if not path.name.startswith(".") and path.is_file():
                    out.append(_File(f"{ref}/{sub}/{path.name}", path, sidecar))
    return out


def _folders(found: list[_File]) -> list[Path]:
    """The backup locks to hold: each deployment folder (dumps, sealing, restores) and its
    base/ (base backups)."""
    out = set()
    for f in found:
        parent = f.path.parent
        out.add(parent.parent if parent.name in ("base", "wal") else parent)
        if parent.name == "base":
            out.add(parent)
    return sorted(out)


def _reseal(backup: _File, old: str, new: str, out: Path) -> str:
    digest = hashlib.sha256()
    with backup.path.open("rb") as src, out.open("wb") as dst:
        for piece in crypto.seal(crypto.unseal(src, old, backup.path.name), new):
            dst.write(piece)
            digest.update(piece)
        dst.flush()
        os.fsync(dst.fileno())
    return digest.hexdigest()


@contextmanager
def rekeyed(state_dir: Path, old: str, new: str) -> Iterator[Rekeyed]:
    """Prepare on entry; commit when the block succeeds, discard when it raises."""
    result = Rekeyed()
    if not new or new == old:  # refused by the stack's own step, with its message
        yield result
        return
    found = _found(state_dir)
    with ExitStack() as locks:
        for folder in _folders(found):
            locks.enter_context(_locked(folder, f"{folder.parent.name}/{folder.name}"))
        # No WAL sealed under the old passphrase meanwhile, in any deployment that archives.
        for wal in sorted(files.backups_root(state_dir).glob("*/*/wal")):
            home = wal.parent
            locks.enter_context(wal_seal.sealing_held(state_dir, home.parent.name, home.name))
        try:
            for b in found:
                ref = b.ref
                if reading.kind(b.path) == "plain":
                    result.unencrypted.append(ref)
                    continue
                with b.path.open("rb") as fh:
                    header = crypto.read_header(fh, b.path.name)
                if crypto.opens_with(header, new):
                    continue  # already (a change that stopped half-way, done again)
                if not crypto.opens_with(header, old):
                    result.unreadable.append(ref)
                    continue
                tmp = b.path.with_name("." + b.path.name + REKEY)
                try:
                    result._pending.append((b, tmp, _reseal(b, old, new, tmp)))
                except crypto.DamagedBackup:
                    tmp.unlink(missing_ok=True)  # unreadable either way: not a reason to stop
                    result.unreadable.append(ref + " (damaged)")
            yield result
        except BaseException:
            for _, tmp, _ in result._pending:
                tmp.unlink(missing_ok=True)
            raise
        for b, tmp, sha in result._pending:
            meta = files.read_meta(b.path) if b.sidecar else {}
            tmp.replace(b.path)
            if b.sidecar:
                files.write_sidecar(
                    b.path, {**meta, "sha256": sha, "size_bytes": b.path.stat().st_size}
                )
            files.fsync_dir(b.path.parent)
            result.done.append(b.ref)
