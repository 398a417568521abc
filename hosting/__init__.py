"""hosting: a declarative hosting platform driven by one hosting.yaml."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hosting.errors import HostingError, SpecError

if TYPE_CHECKING:
    from hosting.spec import Spec, load

__version__ = "0.1.0"

__all__ = ["HostingError", "Spec", "SpecError", "__version__", "load"]


def __getattr__(name: str) -> Any:
    # `hosting.load` and `hosting.Spec` import the spec (and pydantic) on first use, so that
    # `hosting --help`, which imports this package first, does not pay for them.
    if name in ("Spec", "load"):
        import hosting.spec

        return getattr(hosting.spec, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
