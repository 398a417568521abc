"""Backups are encrypted with a key derived from the stack's passphrase: every test here has
one, as `hosting` has wherever it runs."""

from __future__ import annotations

import pytest

PASSPHRASE = "backups-test-passphrase-7f3a"


@pytest.fixture(autouse=True)
def _passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    monkeypatch.setenv("HOSTING_PASSPHRASE", PASSPHRASE)
