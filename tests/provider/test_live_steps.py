"""The live display of apply: finished steps as plain lines; started ones only on a terminal."""

from __future__ import annotations

import sys

import pytest

from hosting.cli.deploy_commands import _show_step
from hosting.provider.events import Step


def _step(status: str, elapsed: float = 0.0) -> Step:
    return Step("urn::x", "acme_shop_0", "container", "create", "acme", "shop", status, elapsed)


def test_done_and_failed_steps_are_plain_lines(capsys: pytest.CaptureFixture[str]) -> None:
    _show_step(_step("done", 2.34))
    _show_step(_step("failed", 0.5))
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "  + create   container acme_shop_0 (2.3s)",
        "  + FAILED create   container acme_shop_0 (0.5s)",
    ]


def test_started_steps_only_on_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _show_step(_step("started"))
    assert capsys.readouterr().err == ""  # CI logs get one line per finished step
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    _show_step(_step("started"))
    assert capsys.readouterr().err == "  … create   container acme_shop_0\n"
