"""WAL encrypted at rest. The server's archive_command writes `<name>.gz` + `.gz.sha256` in
plain gzip (it must never hold the passphrase); sealing, on the host, turns each into
`<name>.gz.enc` (crypto.seal, like the dumps) and only then removes the plain pair.

One segment: its gzip is read once, hashed and sealed into a hidden `.partial` as it goes;
only when the hash matches the `.sha256` the archive command wrote is the partial fsynced and
renamed to `.gz.enc`, the folder fsynced, and then the plain `.gz` removed, its `.sha256`
last. A `kill -9` anywhere leaves either the plain pair whole (no sealed name yet), or both
(the next run checks the sealed copy opens to the recorded checksum and drops the plain one),
or a stray `.sha256` beside a sealed file (removed next run). No segment is lost, and a
partial never has a name a restore reads.

A restore reads sealed segments from `opened`: a scratch folder of decrypted `.gz` files
(the base backup's first segment on, and every timeline history) that the recovering
container mounts read-only, removed afterwards. Sealing and restores exclude each other by a
lock of their own (`.seal.lock` in the deployment folder, not the dumps' `.lock`: a dump and
a seal may run at once): a restore waits for a seal in progress, a seal skips a database
being restored, so nothing is sealed under a restore's feet and no scratch folder outlives
one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hosting.backups import crypto, files, reading
from hosting.errors import HostingError, ProviderError, SecretError
from hosting.stacks import wal_archive

PLAIN, CHECKSUM, SEALED = ".gz", ".gz.sha256", ".gz.enc"
SEAL_LOCK = ".seal.lock"
OPENED_PREFIX = ".wal-opened-"  # the scratch folders of restores, in the deployment folder
DAMAGED = ".damaged"  # a marker in a scratch folder: that sealed segment did not open
CHUNK = 1 << 20


@dataclass
class Sealed:
    sealed: list[str] = field(default_factory=list)  # archive names (no suffix) sealed now
    damaged: list[str] = field(default_factory=list)  # plain ones that failed their check
    busy: bool = False  # a restore held the archive: nothing done, the next run will


def _visible(folder: Path, suffix: str) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir()
        if p.name.endswith(suffix) and not p.name.startswith(".") and p.is_file()
    )  # fmt: skip


def _recorded(checksum: Path) -> str | None:
    try:
        text = checksum.read_text().split()
    except OSError:
        return None
    return text[0] if text else None


def _sealed_digest(path: Path, passphrase: str) -> str | None:
    """sha256 of what a sealed file opens to; None when it does not open whole."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            for chunk in crypto.unseal(fh, passphrase, path.name):
                digest.update(chunk)
    except (crypto.DamagedBackup, SecretError):  # resealed from the checked plain copy
        return None
    return digest.hexdigest()


def _chunks(path: Path, digest: hashlib._Hash) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            yield chunk


def _seal_one(plain: Path, expected: str, passphrase: str) -> bool:
    """Seal one checked gzip into <name>.gz.enc; False (nothing renamed) if it fails its check."""
    final = plain.with_name(plain.name[: -len(PLAIN)] + SEALED)
    tmp = plain.with_name("." + final.name + files.PARTIAL)
    digest = hashlib.sha256()
    try:
        with tmp.open("wb") as out:  # a killed run's partial is simply overwritten
            for piece in crypto.seal(_chunks(plain, digest), passphrase):
                out.write(piece)
            if digest.hexdigest() != expected:
                raise _Mismatch
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    files.fsync_dir(plain.parent)
    return True


class _Mismatch(Exception):
    pass


def seal_folder(folder: Path, passphrase: Callable[[], str]) -> Sealed:
    """Seal every finished plain segment of a WAL archive folder. The caller holds the
    deployment's sealing lock. `passphrase` is asked only when there is something to seal."""
    done = Sealed()
    for stray in _visible(folder, CHECKSUM):  # a run killed between its two removals
        base = stray.name[: -len(CHECKSUM)]
        if (folder / (base + SEALED)).is_file() and not (folder / (base + PLAIN)).exists():
            stray.unlink(missing_ok=True)
    for plain in _visible(folder, PLAIN):
        name = plain.name[: -len(PLAIN)]
        checksum = folder / (name + CHECKSUM)
        sealed = folder / (name + SEALED)
        expected = _recorded(checksum)
        if expected is None:
            done.damaged.append(name)  # never checked: left for a person (restores refuse it)
            continue
        key = passphrase()
        if sealed.is_file() and _sealed_digest(sealed, key) == expected:
            pass  # sealed by a run killed before it removed the plain pair
        else:
            try:
                _seal_one(plain, expected, key)
            except _Mismatch:
                done.damaged.append(name)
                continue
        plain.unlink()
        checksum.unlink(missing_ok=True)
        files.fsync_dir(folder)
        done.sealed.append(name)
    return done


@contextlib.contextmanager
def _seal_lock(home: Path, *, wait: bool) -> Iterator[bool]:
    """The deployment's sealing lock; without `wait`, False (not taken) while it is held."""
    home.mkdir(parents=True, exist_ok=True)
    with (home / SEAL_LOCK).open("a") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def sealing_held(state_dir: Path, tenant: str, deployment: str) -> Iterator[None]:
    """No seal runs while this is held (a restore's, a passphrase change's); waits for one
    in progress (a seal never waits for anything, so this cannot deadlock)."""
    with _seal_lock(files.deployment_dir(state_dir, tenant, deployment), wait=True):
        yield


def seal(state_dir: Path, tenant: str, deployment: str) -> Sealed:
    """Seal one database's archive under its sealing lock; busy (nothing done) while a
    restore holds it. Also removes scratch folders a killed restore left (no restore can be
    running while the lock is ours)."""
    home = files.deployment_dir(state_dir, tenant, deployment)
    wal = wal_archive.archive_dir(state_dir, tenant, deployment)
    if not wal.is_dir():
        return Sealed()
    with _seal_lock(home, wait=False) as mine:
        if not mine:
            return Sealed(busy=True)
        for left in home.glob(OPENED_PREFIX + "*"):
            shutil.rmtree(left, ignore_errors=True)
        return seal_folder(wal, reading.platform_passphrase)


@dataclass(frozen=True)
class SealOutcome:
    tenant: str
    deployment: str
    sealed: tuple[str, ...] = ()
    damaged: tuple[str, ...] = ()
    busy: bool = False
    error: str | None = None


def seal_all(state_dir: Path, databases: list[tuple[str, str]]) -> list[SealOutcome]:
    """The agent's job: every database's archive sealed, each on its own (one that fails is
    an outcome with its error, and the others still run)."""
    out = []
    for tid, did in databases:
        try:
            s = seal(state_dir, tid, did)
            out.append(SealOutcome(tid, did, tuple(s.sealed), tuple(s.damaged), s.busy))
        except HostingError as exc:
            out.append(SealOutcome(tid, did, error=exc.message))
        except OSError as exc:
            out.append(SealOutcome(tid, did, error=f"{exc.strerror or exc}"))
    return out


def _needed(name: str, first_wal: str) -> bool:
    """Whether a restore from a base backup starting at first_wal may ask for this file:
    every timeline history, and every segment from the base's position on, any timeline."""
    if name.endswith(".history"):
        return True
    head = name[:24]
    return len(head) == 24 and head[8:] >= first_wal[8:]


@contextlib.contextmanager
def opened(state_dir: Path, tenant: str, deployment: str, first_wal: str) -> Iterator[Path]:
    """A scratch folder holding the sealed segments a restore from `first_wal` may need,
    decrypted to their gzip (`<name>.gz`; a sealed file that does not open becomes a
    `<name>.damaged` marker the restore command refuses). Mode 0755 files 0644 for the
    server's uid, inside the 0700 deployment folder (no other host user reaches it);
    removed on exit. The caller holds `sealing_held`."""
    home = files.deployment_dir(state_dir, tenant, deployment)
    wal = wal_archive.archive_dir(state_dir, tenant, deployment)
    scratch = home / (OPENED_PREFIX + secrets.token_hex(5))
    scratch.mkdir(mode=0o700)
    try:
        todo = [p for p in _visible(wal, SEALED) if _needed(p.name[: -len(SEALED)], first_wal)]
        key = reading.platform_passphrase() if todo else ""
        for path in todo:
            name = path.name[: -len(SEALED)]
            tmp = scratch / ("." + name + files.PARTIAL)
            try:
                with path.open("rb") as src, tmp.open("wb") as dst:
                    for chunk in crypto.unseal(src, key, path.name):
                        dst.write(chunk)
            except crypto.DamagedBackup:
                tmp.unlink(missing_ok=True)
                (scratch / (name + DAMAGED)).write_bytes(b"")
                continue
            except OSError as exc:  # a full disk: the restore's error, not a traceback
                raise ProviderError(
                    f"cannot decrypt the sealed WAL of {tenant}/{deployment} into {home}:"
                    f" {exc.strerror or type(exc).__name__}",
                    "free disk space: a restore needs its sealed WAL once more, decrypted",
                ) from None
            tmp.chmod(0o644)
            tmp.replace(scratch / (name + PLAIN))
        for marker in scratch.glob("*" + DAMAGED):
            marker.chmod(0o644)
        scratch.chmod(0o755)  # readable only now that it is complete
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
