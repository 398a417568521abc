"""`secrets change-passphrase` before it reaches the engine: where the new passphrase comes
from, and what is refused without opening the stack (the engine tests re-encrypt for real)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hosting.errors import UsageError
from hosting.provider.passphrase import re_encrypt
from tests.conftest import REPO, run_hosting


def test_without_a_new_passphrase_and_no_terminal_it_says_where_to_put_one(tmp_path: Path) -> None:
    env = {"HOSTING_PASSPHRASE": "current-one-1234"}
    out = run_hosting("-f", str(REPO / "hosting.yaml"), "--state-dir", str(tmp_path),
                      "secrets", "change-passphrase", env=env)  # fmt: skip
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        "error: no new passphrase (hint: set HOSTING_NEW_PASSPHRASE; never pass it as an argument)"
    ]
    assert not (tmp_path / "work").exists()  # nothing was opened


@pytest.mark.parametrize(
    ("new", "message"),
    [("", "the new passphrase is empty"), ("same-1234", "the new passphrase is the current one")],
)
def test_an_empty_or_unchanged_passphrase_is_refused_before_the_stack_opens(
    new: str, message: str
) -> None:
    opened: list[str] = []

    def open_stack(phrase: str) -> Any:
        opened.append(phrase)
        raise AssertionError("the stack must not be opened")

    with pytest.raises(UsageError, match=message):
        re_encrypt(open_stack, "same-1234", new, None)
    assert opened == []
