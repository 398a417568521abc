"""Reading a backup back: check it whole first (checksum, and every encrypted chunk
authenticated), then stream its plaintext into a client. Nothing is fed to pg_restore from a
file that has not been read to its end and found intact, so a damaged file never gets as far
as a partial restore. Older, unencrypted dumps (PGDMP at the start) still read."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from hosting.backups import crypto
from hosting.errors import ProviderError, SecretError

CHUNK = 1 << 20
PLAIN_MAGIC = b"PGDMP"


def platform_passphrase() -> str:
    """The stack's passphrase: the platform's one secret, which the backup key derives from."""
    found = os.environ.get("HOSTING_PASSPHRASE") or os.environ.get("PULUMI_CONFIG_PASSPHRASE")
    if not found:
        raise SecretError(
            "no passphrase to encrypt or decrypt backups with",
            "set HOSTING_PASSPHRASE (backups are encrypted with a key derived from it)",
        )
    return found


class _Hashing:
    """A file read through sha256."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh, self.digest = fh, hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.digest.update(data)
        return data


def kind(path: Path) -> str:
    """`encrypted`, `plain` (a pg_dump custom-format file from before encryption) or raises."""
    with path.open("rb") as fh:
        head = fh.read(len(crypto.MAGIC))
    if crypto.is_encrypted(head):
        return "encrypted"
    if head.startswith(PLAIN_MAGIC):
        return "plain"
    raise crypto.DamagedBackup(
        f"{path} is not a pg_dump custom-format file nor an encrypted backup"
    )


def check(path: Path, expected_sha256: str | None) -> str:
    """Read the whole file once: its checksum against the sidecar's and, when encrypted,
    every chunk opened. Returns its kind. Raises DamagedBackup / SecretError."""
    what = kind(path)
    passphrase = platform_passphrase() if what == "encrypted" else ""
    with path.open("rb") as raw:
        fh = _Hashing(raw)
        if what == "encrypted":
            crypto.verify(fh, passphrase, path.name)
        while fh.read(CHUNK):
            pass
    if expected_sha256 is not None and fh.digest.hexdigest() != expected_sha256:
        raise crypto.DamagedBackup(
            f"{path.name} does not match the checksum recorded when it was taken",
            "the file is damaged; restore another one",
        )
    return what


def plaintext(path: Path) -> Iterator[bytes]:
    """The dump itself, chunk by chunk (decrypted when encrypted)."""
    with path.open("rb") as fh:
        if crypto.is_encrypted(fh.read(len(crypto.MAGIC))):
            fh.seek(0)
            yield from crypto.unseal(fh, platform_passphrase(), path.name)
            return
        fh.seek(0)
        while chunk := fh.read(CHUNK):
            yield chunk


def feed(
    argv: list[str], env: dict[str, str], chunks: Iterator[bytes], timeout_s: float, what: str
) -> tuple[int, bytes]:
    """Stream chunks into a process's stdin; (exit code, stderr). Killed at the deadline, and
    also when reading the chunks fails (the client then sees its input end early)."""
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    assert proc.stdin is not None and proc.stderr is not None
    errors: list[bytes] = []
    reader = threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    expired = threading.Event()

    def stop() -> None:
        expired.set()
        proc.kill()

    timer = threading.Timer(timeout_s, stop)
    timer.start()
    try:
        try:
            for chunk in chunks:
                proc.stdin.write(chunk)
        except BrokenPipeError:
            pass  # the client stopped reading: its exit code and stderr say why
        except BaseException:
            proc.kill()
            raise
        finally:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
        code = proc.wait()
    finally:
        timer.cancel()
        reader.join(timeout=10)
        proc.stderr.close()
    if expired.is_set():
        raise ProviderError(f"{what} took over {timeout_s:g} s and was stopped")
    return code, b"".join(errors)
