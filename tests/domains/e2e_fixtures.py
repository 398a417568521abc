"""Placeholder: filled in with the Pebble/Caddy fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def pebble() -> None:
    return None


@pytest.fixture(scope="session")
def acme_stack() -> None:
    return None
