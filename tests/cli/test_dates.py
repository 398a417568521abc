"""Every command's DATE is read by one parser with one set of rules: YYYY-MM-DD exactly, and
not after today (UTC), since no usage after today is known yet."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO, run_hosting

COMMANDS = [
    ["usage", "acme"],
    ["subscription", "acme"],
    ["subscription", "sync"],
    ["invoice", "run"],
    ["report", "usage", "acme", "-o", "{out}"],
    ["report", "platform", "-o", "{out}"],
]


def _run(tmp_path: Path, args: list[str], day: str) -> tuple[int, str, Path]:
    out = tmp_path / "report.html"
    argv = [a.replace("{out}", str(out)) for a in args]
    done = run_hosting(
        "-f", str(REPO / "hosting.yaml"), "--state-dir", str(tmp_path / "state"),
        *argv, "--as-of", day,
    )  # fmt: skip
    assert done.stdout == "", done.stdout
    return done.returncode, done.stderr, out


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
@pytest.mark.parametrize("day", ["2027-01-01", "2099-01-01"])
def test_a_date_after_today_is_refused_by_every_command(
    tmp_path: Path, args: list[str], day: str
) -> None:
    code, err, out = _run(tmp_path, args, day)
    assert code == 1
    assert err.startswith(f"error: as-of date {day} is in the future") and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
@pytest.mark.parametrize("day", ["2026-11-5", "20-11-2026", "2026-11-05T00:00"])
def test_a_malformed_date_is_refused_the_same_way_by_every_command(
    tmp_path: Path, args: list[str], day: str
) -> None:
    code, err, out = _run(tmp_path, args, day)
    assert code == 1
    assert err == f"error: `{day}` is not a date (hint: use YYYY-MM-DD, e.g. 2026-11-30)\n"
    assert not out.exists()
