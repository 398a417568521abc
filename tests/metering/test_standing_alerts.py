"""`usage` and `status` show the alerts that hold now: storage ≥ 90 % and bandwidth overage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hosting.store import connect
from tests.conftest import run_hosting
from tests.metering.helpers import write_spec

GB = 2**30


def _store_with(tmp_path: Path, storage_gb: float, sent_gb: float) -> None:
    write_spec(tmp_path, {"acme": {"site": {"type": "web", "image": "x", "port": 80}}})
    with connect(tmp_path / ".hosting" / "hosting.duckdb") as conn:
        conn.execute(
            "INSERT INTO deployment_storage VALUES"
            " ('s1', 'acme', 'site', 'static', ?, NULL, '2026-11-10 00:00:00')",
            [int(storage_gb * GB)],
        )
        conn.execute(
            'INSERT INTO deployment_metrics (event_id, tenant, deployment, "timestamp",'
            " bandwidth_out) VALUES ('m1', 'acme', 'site', '2026-11-10 00:00:00', ?)",
            [int(sent_gb * GB)],
        )


def test_usage_shows_storage_warning_and_bandwidth_overage(tmp_path: Path) -> None:
    # starter: 10 GB storage, 100 GB bandwidth; 9.5 GB is 95 % (warning), 120 GB is over.
    _store_with(tmp_path, 9.5, 120)
    out = run_hosting("usage", "acme", "--as-of", "2026-11-20", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    alerts = {(a["kind"], a["level"]) for a in json.loads(out.stdout)["alerts"]}
    assert alerts == {("storage", "warning"), ("bandwidth", "overage")}
    text = run_hosting("usage", "acme", "--as-of", "2026-11-20", cwd=tmp_path).stdout
    assert "alert: storage warning: storage 95.0% of 10 GB" in text


def test_usage_within_the_plan_has_no_alert(tmp_path: Path) -> None:
    _store_with(tmp_path, 8.9, 99)
    out = run_hosting("usage", "acme", "--as-of", "2026-11-20", "--json", cwd=tmp_path)
    assert json.loads(out.stdout)["alerts"] == []


@pytest.mark.docker
def test_status_shows_a_full_tenant(docker_engine: str, tmp_path: Path) -> None:
    _store_with(tmp_path, 10.0, 0)
    out = run_hosting("status", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    alerts = json.loads(out.stdout)["alerts"]
    assert [(a["tenant"], a["kind"], a["level"]) for a in alerts] == [("acme", "storage", "full")]
    text = run_hosting("status", cwd=tmp_path).stdout
    assert "alert: acme storage full: storage 100.0% of 10 GB: new deployments are refused" in text
