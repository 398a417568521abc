"""The edge's view of custom domains: which ones may get routes and certificates.

A thin bridge to `hosting.domains` (which owns DNS verification and its state in the store),
with the signature the provider driver looks up: `verified_domains(spec, state_dir)`.
"""

from __future__ import annotations

from pathlib import Path

from hosting.domains.state import verified_domains as _verified_in_store
from hosting.spec.models import Spec

STORE_FILE = "hosting.duckdb"  # the store's name in the state directory (cli.context.App)


def verified_domains(spec: Spec, state_dir: Path) -> frozenset[str]:
    """Custom domains verified for the deployment that lists them now; the rest get no route,
    so Caddy never places an ACME order for a name whose DNS does not point here."""
    return _verified_in_store(spec, Path(state_dir) / STORE_FILE)
