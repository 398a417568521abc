"""`meter --once` runs every job the agent runs, backups included when they are due, so a
cron line does what the agent does; `--backup-interval 0` leaves them out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hosting.backups import files
from tests.conftest import run_hosting
from tests.metering.helpers import unique, write_spec

pytestmark = pytest.mark.docker


def _jobs(proc: object) -> dict[str, dict[str, object]]:
    return {j["job"]: j for j in json.loads(proc.stdout)["jobs"]}  # type: ignore[attr-defined]


def test_meter_once_backs_up_a_database_that_is_due(docker_engine: str, tmp_path: Path) -> None:
    tenant = unique()
    write_spec(tmp_path, {tenant: {"db": {"type": "database"}}})
    once = ["meter", "--once", "--edge-url", "http://127.0.0.1:9"]
    proc = run_hosting(*once, "--json", cwd=tmp_path)
    jobs = _jobs(proc)
    # Due (no backup on disk), tried, and failed: the database was never applied.
    assert jobs["backups"]["ok"] is False
    assert f"{tenant}/db" in str(jobs["backups"]["error"])
    assert proc.returncode == 1
    text = run_hosting(*once, cwd=tmp_path)
    assert "backups  failed" in text.stdout and "error: backups:" in text.stderr

    assert "backups" not in _jobs(run_hosting(*once, "--json", "--backup-interval", "0",
                                              cwd=tmp_path))  # fmt: skip


def test_meter_once_skips_backups_that_are_not_due(docker_engine: str, tmp_path: Path) -> None:
    tenant = unique()
    write_spec(tmp_path, {tenant: {"db": {"type": "database"}}})
    folder = files.deployment_dir(tmp_path / ".hosting", tenant, "db")
    folder.mkdir(parents=True)
    dump = folder / f"{files.stamp(datetime.now(UTC))}{files.SUFFIX}"
    dump.write_bytes(b"PGDMP")
    files.write_sidecar(dump, {"size_bytes": 5})
    proc = run_hosting("meter", "--once", "--json", "--edge-url", "http://127.0.0.1:9",
                       cwd=tmp_path)  # fmt: skip
    backups = _jobs(proc)["backups"]
    assert backups["ok"] is True and backups["summary"] == {"due": False}
