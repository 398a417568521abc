"""The encrypted framing without Docker: round trips at chunk boundaries, and every way a
file can be altered (a flipped byte, a cut, chunks swapped, dropped or moved from another
file, a wrong passphrase) is refused with its own one-line error."""

from __future__ import annotations

import io
import os

import pytest

from hosting.backups import crypto
from hosting.backups.crypto import CHUNK, FRAME, HEADER, DamagedBackup, seal, unseal, verify
from hosting.errors import SecretError

PASS = "correct horse battery staple"


def _sealed(data: bytes, passphrase: str = PASS, pieces: int = 3) -> bytes:
    step = max(1, len(data) // pieces)
    parts = [data[i : i + step] for i in range(0, len(data), step)] or [b""]
    return b"".join(seal(parts, passphrase))


def _open(blob: bytes, passphrase: str = PASS) -> bytes:
    return b"".join(unseal(io.BytesIO(blob), passphrase, "x.dump"))


def _frames(blob: bytes) -> list[bytes]:
    """The raw frames after the header, as written."""
    out, at = [], HEADER
    while at < len(blob):
        _, length = FRAME.unpack_from(blob, at)
        out.append(blob[at : at + FRAME.size + length])
        at += FRAME.size + length
    return out


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 5])
def test_round_trip_at_every_chunk_boundary(size: int) -> None:
    data = os.urandom(size)
    blob = _sealed(data)
    assert _open(blob) == data
    frames = _frames(blob)
    assert len(frames) == max(1, -(-size // CHUNK))  # ceil, and one (empty) frame for nothing
    assert [f[0] for f in frames] == [0] * (len(frames) - 1) + [1]  # only the last is flagged
    assert verify(io.BytesIO(blob), PASS, "x.dump") == size


def test_the_ciphertext_hides_the_plaintext_and_differs_each_time() -> None:
    data = b"INSERT a well known row: customer 4242 alice@example.test\n" * 1000
    first, second = _sealed(data), _sealed(data)
    assert b"alice@example.test" not in first and b"customer 4242" not in first
    assert first != second  # a new salt, key and nonce prefix per file


def test_a_flipped_byte_anywhere_is_refused() -> None:
    blob = _sealed(os.urandom(CHUNK + 100))
    # In the header's salt, a frame's flags, a length, a ciphertext and a tag.
    for at in (len(crypto.MAGIC) + 1, HEADER, HEADER + 2, HEADER + 50, len(blob) - 1):
        bad = bytearray(blob)
        bad[at] ^= 0x01
        with pytest.raises((DamagedBackup, SecretError)):
            _open(bytes(bad))


def test_a_flip_in_a_chunk_says_damaged_with_its_number() -> None:
    blob = bytearray(_sealed(os.urandom(2 * CHUNK + 10)))
    second = HEADER + len(_frames(bytes(blob))[0]) + FRAME.size + 10
    blob[second] ^= 0x80
    with pytest.raises(DamagedBackup, match="chunk 1 fails its authentication check"):
        _open(bytes(blob))


def test_truncation_at_any_frame_boundary_or_inside_one_is_refused() -> None:
    blob = _sealed(os.urandom(2 * CHUNK + 10))
    frames = _frames(blob)
    cuts = [HEADER, HEADER + len(frames[0]), HEADER + len(frames[0]) + len(frames[1])]
    cuts += [HEADER + 3, len(blob) - 1, len(blob) - TAG_HALF]
    for cut in cuts:
        with pytest.raises(DamagedBackup, match="truncated"):
            _open(blob[:cut])
    with pytest.raises(DamagedBackup, match="header"):
        _open(blob[: HEADER - 1])


TAG_HALF = 8


def test_reordered_dropped_repeated_or_foreign_chunks_are_refused() -> None:
    data = os.urandom(3 * CHUNK + 7)
    blob = _sealed(data)
    head, frames = blob[:HEADER], _frames(blob)
    assert len(frames) == 4
    swapped = head + frames[1] + frames[0] + frames[2] + frames[3]
    dropped = head + frames[0] + frames[2] + frames[3]
    repeated = head + frames[0] + frames[0] + frames[1] + frames[2] + frames[3]
    # The last frame made to look like a middle one, and a middle one flagged last.
    early_end = head + frames[0] + bytes([1]) + frames[1][1:]
    trailing = blob + frames[3]
    other = _frames(_sealed(os.urandom(3 * CHUNK + 7)))
    foreign = head + frames[0] + other[1] + frames[2] + frames[3]
    for bad in (swapped, dropped, repeated, early_end, foreign):
        with pytest.raises(DamagedBackup, match="chunk"):
            _open(bad)
    with pytest.raises(DamagedBackup, match="after its last chunk"):
        _open(trailing)


def test_a_wrong_passphrase_is_refused_before_any_chunk() -> None:
    blob = _sealed(b"secret rows")
    with pytest.raises(SecretError, match="another passphrase than HOSTING_PASSPHRASE"):
        _open(blob, "not the passphrase")
    header = crypto.read_header(io.BytesIO(blob), "x.dump")
    assert crypto.opens_with(header, PASS) and not crypto.opens_with(header, PASS + "!")
    with pytest.raises(SecretError, match="no passphrase"):
        b"".join(seal([b"x"], ""))


def test_an_unencrypted_dump_or_another_version_is_told_apart() -> None:
    assert not crypto.is_encrypted(b"PGDMP\x01\x0e")
    assert crypto.is_encrypted(_sealed(b"x")[:16])
    with pytest.raises(DamagedBackup, match="not an encrypted backup"):
        _open(b"PGDMP" + bytes(100))
    future = bytearray(_sealed(b"x"))
    future[len(crypto.MAGIC)] = 2
    with pytest.raises(DamagedBackup, match="format version 2"):
        _open(bytes(future))
