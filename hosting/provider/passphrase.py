"""Change the passphrase that encrypts the stack's secrets (database passwords, secret env
values, in the stack's config and in its state).

The Python Automation API has no call for it, so the Pulumi CLI does the re-encryption
(`stack change-secrets-provider passphrase`): it reads the current passphrase from the
environment and, not attached to a terminal, the new one from its standard input, so
neither appears in a process list. The CLI saves the config and then the state, two writes:
both are copied beforehand and put back if anything fails, so a stack is never left half
re-encrypted."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hosting.errors import ProviderError, SecretError, UsageError
from hosting.provider.engine_cli import run_with_stdin

MIGRATED = "Migrating old configuration and state to new secrets provider"


def re_encrypt(
    open_stack: Callable[[str], Any], old: str, new: str, backend_dir: Path | None
) -> None:
    """Re-encrypt the stack that `open_stack(passphrase)` opens from `old` to `new`, then prove
    `new` opens config and state. A wrong `old` changes nothing."""
    from hosting.provider.driver import STACK

    if not new:
        raise UsageError("the new passphrase is empty", "set HOSTING_NEW_PASSPHRASE")
    if new == old:
        raise UsageError(
            "the new passphrase is the current one", "set HOSTING_NEW_PASSPHRASE to another"
        )
    stack = open_stack(old)
    _opens(stack, "the current passphrase (HOSTING_PASSPHRASE)")
    workspace = stack.workspace
    config = Path(workspace.work_dir) / f"Pulumi.{STACK}.yaml"
    saved = _Copies([config] + ([backend_dir] if backend_dir else []))
    try:
        _run_cli(workspace, STACK, new)
        _opens(open_stack(new), "the new passphrase")
    except BaseException:
        saved.restore()
        raise
    finally:
        saved.discard()


def _opens(stack: Any, which: str) -> None:
    """Decrypt every secret in config and outputs, or say which passphrase failed."""
    from pulumi import automation as auto

    try:
        stack.get_all_config()  # decrypts: the SDK asks for --show-secrets
        stack.outputs()
    except auto.CommandError as exc:
        if "passphrase" in str(exc):
            raise SecretError(
                f"{which} does not decrypt the stack's secrets",
                "check the value; nothing was changed",
            ) from None
        raise ProviderError(_last_error(str(exc))) from None


def _run_cli(workspace: Any, stack: str, new: str) -> None:
    args = ["stack", "change-secrets-provider", "passphrase", "--stack", stack]
    out = run_with_stdin(workspace, args, new + "\n")
    if out.returncode != 0 or MIGRATED not in out.stdout:
        raise ProviderError(
            "the engine could not re-encrypt the stack's secrets: "
            + _last_error(out.stderr or out.stdout)
        )


def _last_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.lower().startswith("error")]
    return (errors or lines or ["no output"])[-1]


class _Copies:
    """Copies of files and folders, put back on failure."""

    def __init__(self, paths: list[Path]) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="hosting-passphrase-"))
        self._saved: list[tuple[Path, Path]] = []
        for i, path in enumerate(paths):
            if not path.exists():
                continue
            copy = self._dir / str(i)
            if path.is_dir():
                shutil.copytree(path, copy, symlinks=True)
            else:
                shutil.copy2(path, copy)
            self._saved.append((path, copy))

    def restore(self) -> None:
        for path, copy in self._saved:
            if path.is_dir():
                shutil.rmtree(path)
                shutil.copytree(copy, path, symlinks=True)
            else:
                shutil.copy2(copy, path)

    def discard(self) -> None:
        # The copies are encrypted under the old passphrase, which may be why it is changed.
        shutil.rmtree(self._dir, ignore_errors=True)
