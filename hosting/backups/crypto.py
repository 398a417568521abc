"""Backups encrypted at rest: AES-256-GCM (the `cryptography` package) in a framed stream, so
a dump of any size is sealed and opened in 1 MiB chunks, never whole in memory.

File layout (version 1):

    header  = MAGIC (8) | version (1) | salt (16) | nonce prefix (7) | key check (16)
    frame*  = flags (1) | length (4, big-endian) | ciphertext+tag (length)

The key is HKDF-SHA256 of the platform passphrase with the file's random salt: a new key per
file. The key check (more HKDF output) tells a wrong passphrase from a damaged file. Chunk i
is sealed with nonce = prefix | i (4 bytes) | last flag (1 byte) and the header as associated
data: a chunk moved, dropped, repeated or taken from another file fails to open, and a file
cut after any chunk but the one flagged last is refused as truncated (the STREAM
construction of Hoang, Reyhanitabar, Rogaway and Vizár).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hosting.errors import SecretError, UsageError

MAGIC = b"HSTBKENC"
VERSION = 1
SALT, PREFIX, CHECK, TAG = 16, 7, 16, 16
HEADER = len(MAGIC) + 1 + SALT + PREFIX + CHECK
FRAME = struct.Struct(">BI")
LAST = 1
CHUNK = 1 << 20
MAX_COUNTER = 2**32 - 1
INFO = b"hosting backup v1"
DESCRIPTION = "AES-256-GCM, 1 MiB chunks, key HKDF-SHA256(passphrase, salt), format 1"


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class DamagedBackup(UsageError):
    """The file is not what was written: cut short, altered, or not a backup at all."""


@dataclass(frozen=True)
class Header:
    salt: bytes
    prefix: bytes
    check: bytes

    def pack(self) -> bytes:
        return MAGIC + bytes([VERSION]) + self.salt + self.prefix + self.check


def _keys(passphrase: str, salt: bytes) -> tuple[bytes, bytes]:
    if not passphrase:
        raise SecretError(
            "no passphrase to encrypt backups with",
            "set HOSTING_PASSPHRASE (backups are encrypted with a key derived from it)",
        )
    okm = HKDF(algorithm=hashes.SHA256(), length=32 + CHECK, salt=salt, info=INFO).derive(
        passphrase.encode()
    )
    return okm[:32], okm[32:]


def is_encrypted(first_bytes: bytes) -> bool:
    return first_bytes.startswith(MAGIC)


def read_header(fh: Readable, name: str) -> Header:
    raw = fh.read(HEADER)
    if len(raw) < HEADER or not raw.startswith(MAGIC):
        raise DamagedBackup(f"{name} is not an encrypted backup (its header is missing or short)")
    if raw[len(MAGIC)] != VERSION:
        raise DamagedBackup(
            f"{name} is an encrypted backup of format version {raw[len(MAGIC)]}, not {VERSION}",
            "a newer hosting wrote it: restore it with that version",
        )
    salt = len(MAGIC) + 1
    prefix = salt + SALT
    return Header(raw[salt:prefix], raw[prefix : prefix + PREFIX], raw[prefix + PREFIX :])


def opens_with(header: Header, passphrase: str) -> bool:
    """Whether this passphrase is the one the file was sealed under (no chunk is read)."""
    return _keys(passphrase, header.salt)[1] == header.check


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    if counter > MAX_COUNTER:
        raise UsageError("a backup over 4 PiB cannot be sealed in this format")
    return prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def seal(chunks: Iterable[bytes], passphrase: str) -> Iterator[bytes]:
    """The encrypted file, piece by piece: the header, then one frame per chunk of input (cut
    or merged to CHUNK bytes). Holds one chunk back to know which one is last."""
    salt, prefix = os.urandom(SALT), os.urandom(PREFIX)
    key, check = _keys(passphrase, salt)
    header = Header(salt, prefix, check).pack()
    aead = AESGCM(key)
    yield header
    counter = 0
    pending = b""
    for data in chunks:
        pending += data
        while len(pending) > CHUNK:  # strictly more: the last chunk may be exactly CHUNK
            piece, pending = pending[:CHUNK], pending[CHUNK:]
            yield _frame(aead, prefix, counter, piece, False, header)
            counter += 1
    yield _frame(aead, prefix, counter, pending, True, header)


def _frame(aead: AESGCM, prefix: bytes, counter: int, data: bytes, last: bool, ad: bytes) -> bytes:
    sealed = aead.encrypt(_nonce(prefix, counter, last), data, ad)
    return FRAME.pack(LAST if last else 0, len(sealed)) + sealed


def unseal(fh: Readable, passphrase: str, name: str) -> Iterator[bytes]:
    """The plaintext, chunk by chunk, each authenticated before it is yielded. Raises
    SecretError for a wrong passphrase and DamagedBackup for a cut or altered file; a caller
    that must not act on a partial file reads it all (see `verify`) before using any."""
    header = read_header(fh, name)
    key, check = _keys(passphrase, header.salt)
    if check != header.check:
        raise SecretError(
            f"{name} was encrypted under another passphrase than HOSTING_PASSPHRASE",
            "set HOSTING_PASSPHRASE to the passphrase in use when the backup was taken",
        )
    aead = AESGCM(key)
    ad = header.pack()
    counter = 0
    while True:
        raw = fh.read(FRAME.size)
        if len(raw) < FRAME.size:
            raise DamagedBackup(f"{name} is truncated: it ends before its last chunk")
        flags, length = FRAME.unpack(raw)
        if flags & ~LAST or length < TAG or length > CHUNK + TAG:
            raise DamagedBackup(f"{name} is damaged: chunk {counter} has a bad frame")
        sealed = fh.read(length)
        if len(sealed) < length:
            raise DamagedBackup(f"{name} is truncated: chunk {counter} is cut short")
        last = bool(flags & LAST)
        try:
            plain = aead.decrypt(_nonce(header.prefix, counter, last), sealed, ad)
        except InvalidTag:
            raise DamagedBackup(
                f"{name} is damaged: chunk {counter} fails its authentication check",
                "the file was altered or cut; restore another backup",
            ) from None
        yield plain
        if last:
            if fh.read(1):
                raise DamagedBackup(f"{name} is damaged: it has data after its last chunk")
            return
        counter += 1


def verify(fh: Readable, passphrase: str, name: str) -> int:
    """Open every chunk without keeping any; returns the plaintext size."""
    return sum(len(chunk) for chunk in unseal(fh, passphrase, name))
