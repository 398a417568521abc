"""`domains --caddy-data DIR` names where issued certificates are read: a directory that
is not there is a mistake to report, not to pass over silently (every certificate would
then read as not issued)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import REPO, run_hosting


def test_a_caddy_data_directory_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    base = ["-f", str(REPO / "hosting.yaml"), "--state-dir", str(tmp_path)]
    done = run_hosting(*base, "domains", "--caddy-data", str(tmp_path / "nonexistent"))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("error: Invalid value for '--caddy-data'")
    assert "nonexistent" in done.stderr and "does not exist" in done.stderr
    done = run_hosting(*base, "domains", "--caddy-data", str(tmp_path), "--edge", "127.0.0.1:9")
    assert done.returncode == 0, done.stderr
