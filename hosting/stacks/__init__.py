"""The Pulumi program. Importing this package does not import pulumi: only `program()`'s
modules do, so `hosting validate` stays fast."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hosting.spec.models import Spec
    from hosting.stacks.settings import ProgramSettings


def program(
    spec: Spec, settings: ProgramSettings | None = None, *, keep_data: bool = True
) -> Callable[[], None]:
    """The inline Pulumi program for `spec` (a callable), see `hosting.stacks.program`."""
    from hosting.stacks.build import program as _program

    return _program(spec, settings, keep_data=keep_data)


__all__ = ["program"]
