"""`backup list` checks its TENANT[/DEPLOYMENT] as `backup run` does: an unknown tenant or a
deployment that is not a database is a clear error, not an empty list."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO, run_hosting


def _list(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    done = run_hosting(
        "-f", str(REPO / "hosting.yaml"), "--state-dir", str(tmp_path), "backup", "list", *args
    )  # fmt: skip
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("nobody", "error: unknown tenant `nobody`"),
        ("nobody/db", "error: unknown tenant `nobody`"),
        ("acme/nothing", "error: tenant `acme` has no deployment `nothing`"),
        ("acme/shop", "error: acme/shop is a web deployment, not a database"),
        ("acme/docs", "error: acme/docs is a web deployment, not a database"),
    ],
)
def test_backup_list_refuses_what_backup_run_refuses(
    tmp_path: Path, ref: str, message: str
) -> None:
    code, out, err = _list(tmp_path, ref)
    assert (code, out) == (1, "")
    assert err.startswith(message) and err.count("\n") == 1, err


def test_backup_list_of_a_database_without_backups_says_so(tmp_path: Path) -> None:
    assert _list(tmp_path, "acme/main") == (0, "no backups\n", "")
    assert _list(tmp_path, "acme") == (0, "no backups\n", "")
