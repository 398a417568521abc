"""Reading a `{env: NAME}` / `{file: PATH}` secret reference of the platform section (SMTP
credentials, the payment provider's keys) at the moment it is needed. Errors name the field,
the variable or the file, never a value."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from hosting.errors import SecretError
from hosting.spec.models import SecretRef


def read_secret(
    ref: SecretRef,
    field: str,
    base_dir: Path,
    env: Mapping[str, str] | None = None,
    when: str = "first",
) -> str:
    """The value `ref` points at; `field` names it for errors (`platform.smtp.password`).
    A file's value is stripped of surrounding whitespace; an empty value is an error."""
    environ = os.environ if env is None else env
    if ref.env is not None:
        value = environ.get(ref.env, "")
        if not value:
            raise SecretError(f"${ref.env} is not set ({field})", f"export {ref.env} {when}")
        return value
    assert ref.file is not None
    path = (base_dir / ref.file).resolve()
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise SecretError(f"cannot read {path} ({field}): {exc.strerror}") from None
    if not value:
        raise SecretError(f"{path} is empty ({field})")
    return value
